//! Several sessiond processes on one shared store (Redis, Redis Cluster,
//! PostgreSQL, memcached), a Redis outage in the middle of traffic, and the
//! administration of a user's sessions — all against the real binary and
//! real servers (`scripts/test.sh` provides them; see scripts/services.sh).

mod common;

use common::{free_port, login, Options, RedisKeys, Server};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ADMIN: &str = "admin-credential-for-tests-0123456789";

/// The URL in `var`, or `default`; if neither, the test lacks its service
/// (see [`common::missing`]).
fn service(var: &str, default: Option<&str>) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => default
            .map(str::to_owned)
            .or_else(|| common::missing(&format!("{var} is not set (scripts/test.sh sets it)"))),
    }
}

/// The test Redis and a fresh key prefix (`.0` the URL, `.1` the prefix),
/// whose keys are deleted when the guard drops.
fn test_redis() -> Option<RedisKeys> {
    let url = service("SESSIOND_TEST_REDIS_URL", Some("redis://127.0.0.1:6379"))?;
    Some(RedisKeys(url, unique("sessiond-srvtest")))
}

fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", sessiond_core::token::random_hex(6))
}

fn options(kind: &str, url: &str, prefix: &str) -> Options {
    Options::default()
        .user("alice", "alice-pw")
        .user("bob", "bob-pw")
        .env("SESSIOND_STORE__KIND", kind)
        .env("SESSIOND_STORE__URL", url)
        .env("SESSIOND_STORE__PREFIX", prefix)
        .env("SESSIOND_ADMIN_TOKEN", ADMIN)
}

/// The test PostgreSQL and a fresh schema (`.0` the URL, `.1` the schema),
/// dropped when the guard drops.
fn test_postgres() -> Option<PgSchema> {
    let url = service(
        "SESSIOND_TEST_POSTGRES_URL",
        Some("postgres://root@127.0.0.1:5432/test"),
    )?;
    Some(PgSchema(url, unique("sessiond_srvtest")))
}

/// Drops a PostgreSQL schema when a test ends.
struct PgSchema(String, String);

impl Drop for PgSchema {
    fn drop(&mut self) {
        let (url, schema) = (self.0.clone(), self.1.clone());
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async {
                    if let Ok(pool) = sqlx::PgPool::connect(&url).await {
                        let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                            .execute(&pool)
                            .await;
                    }
                })
        })
        .join()
        .unwrap();
    }
}

/// What two instances on one store must show each other.
async fn two_instances_share_sessions(kind: &str, url: &str, prefix: &str) {
    let a = Server::start(options(kind, url, prefix));
    let b = Server::start(options(kind, url, prefix));

    // issued by A, valid on B
    let t = login(&a, "rc", "alice", "alice-pw").await;
    b.get(&format!("/valid?realm=rc&token={t}"))
        .await
        .assert_text(200, "YES\nalice\nauth/file\n\n");
    let v = b
        .post_json(
            "/v1/validate",
            serde_json::json!({"realm": "rc", "token": t}),
        )
        .await;
    assert_eq!(v.json()["status"], "valid", "{v:?}");

    // revoked on B: A sees it on the very next request
    b.get(&format!("/revoke?realm=rc&token={t}"))
        .await
        .assert_text(200, "OK\n");
    a.get(&format!("/valid?realm=rc&token={t}"))
        .await
        .assert_text(200, "NO\n");

    // a new login on A supersedes the older token, as B sees it
    let old = login(&a, "rc", "alice", "alice-pw").await;
    let new = login(&a, "rc", "alice", "alice-pw").await;
    b.get(&format!("/valid?realm=rc&token={old}"))
        .await
        .assert_text(200, "SUPERCEDED\nalice\nauth/file\n\n");
    b.get(&format!("/valid?realm=rc&token={new}"))
        .await
        .assert_text(200, "YES\nalice\nauth/file\n\n");

    // a replace on B; the old token is dead on A, the new one alive
    let moved = b.get(&format!("/replace?realm=rc&token={new}")).await;
    assert_eq!(moved.status, 200, "{moved:?}");
    let moved = moved.text().lines().next().unwrap().to_owned();
    a.get(&format!("/valid?realm=rc&token={new}"))
        .await
        .assert_text(200, "NO\n");
    a.get(&format!("/valid?realm=rc&token={moved}"))
        .await
        .assert_text(200, "YES\nalice\nauth/file\n\n");

    // session data written through A is read through B
    let put = a
        .request(
            "PUT",
            "/v1/session/data?realm=rc",
            &[
                ("Authorization", &format!("Bearer {moved}")),
                ("Content-Type", "application/json"),
            ],
            br#"{"data": {"theme": "dark"}, "version": 0}"#,
        )
        .await;
    assert_eq!(put.status, 200, "{put:?}");
    let got = b
        .request(
            "GET",
            "/v1/session/data?realm=rc",
            &[("Authorization", &format!("Bearer {moved}"))],
            b"",
        )
        .await;
    assert_eq!(got.status, 200, "{got:?}");
    assert_eq!(got.json()["data"]["theme"], "dark", "{got:?}");

    // group keys made on A are known to B
    let key = a.get(&format!("/gen_key?realm=rc&token={moved}")).await;
    assert_eq!(key.status, 200, "{key:?}");
    b.get(&format!("/get_key?realm=rc&token={moved}"))
        .await
        .assert_text(200, &key.text());
}

#[tokio::test]
async fn redis_two_instances() {
    let Some(keys) = test_redis() else { return };
    let (url, prefix) = (keys.0.clone(), keys.1.clone());
    two_instances_share_sessions("redis", &url, &prefix).await;
}

#[tokio::test]
async fn redis_cluster_two_instances() {
    let Some(nodes) = service("SESSIOND_TEST_REDIS_CLUSTER", None) else {
        return;
    };
    two_instances_share_sessions("redis-cluster", &nodes, &unique("sessiond-srvtest")).await;
}

#[tokio::test]
async fn postgres_two_instances() {
    let Some(pg) = test_postgres() else { return };
    two_instances_share_sessions("postgres", &pg.0, &pg.1).await;
}

#[tokio::test]
async fn memcached_two_instances() {
    let Some(url) = service("SESSIOND_TEST_MEMCACHED", None) else {
        return;
    };
    two_instances_share_sessions("memcached", &url, &unique("sessiond-srvtest")).await;
}

/// A user's sessions through the admin API: list, end one, end all but the
/// caller's own, end all — and never without the admin credential.
#[tokio::test]
async fn admin_lists_and_revokes_a_users_sessions() {
    let Some(keys) = test_redis() else { return };
    let (url, prefix) = (keys.0.clone(), keys.1.clone());
    let s = Server::start(
        options("redis", &url, &prefix).env("SESSIOND_REALMS__WEB__SUPERSEDE", "false"),
    );
    let admin = format!("Bearer {ADMIN}");
    let get = |path: String| {
        let admin = admin.clone();
        let s = &s;
        async move {
            s.request("GET", &path, &[("Authorization", &admin)], b"")
                .await
        }
    };
    let phone = login(&s, "web", "alice", "alice-pw").await;
    let laptop = login(&s, "web", "alice", "alice-pw").await;
    let tablet = login(&s, "web", "alice", "alice-pw").await;
    let bobs = login(&s, "web", "bob", "bob-pw").await;

    // no credential, a wrong one
    let r = s.get("/v1/users/web/alice/sessions").await;
    assert_eq!(r.status, 401, "{r:?}");
    let r = s
        .request(
            "GET",
            "/v1/users/web/alice/sessions",
            &[("Authorization", "Bearer not-the-admin-credential")],
            b"",
        )
        .await;
    assert_eq!(r.status, 403, "{r:?}");

    let listed = get("/v1/users/web/alice/sessions".into()).await;
    assert_eq!(listed.status, 200, "{listed:?}");
    let sessions = listed.json()["sessions"].as_array().unwrap().clone();
    assert_eq!(sessions.len(), 3, "{listed:?}");
    for entry in &sessions {
        assert_eq!(entry["source"], "auth/file");
        assert_eq!(entry["client_addr"], "127.0.0.1");
        assert!(entry["created"].as_i64().unwrap() > 0);
        assert!(entry["last_seen"].as_i64().unwrap() > 0);
        assert_eq!(entry["id"].as_str().unwrap().len(), 64);
    }
    let text = listed.text();
    for t in [&phone, &laptop, &tablet] {
        assert!(!text.contains(t.as_str()), "a listing never shows tokens");
    }

    // end one, by id; an id of bob's is not alice's to end
    // a session's id is the SHA-256 of its token
    let phone_id = sessiond_core::Token::from_client(phone.clone())
        .hash()
        .to_hex();
    assert!(
        sessions.iter().any(|e| e["id"] == phone_id.as_str()),
        "{listed:?}"
    );
    let bob_id = get("/v1/users/web/bob/sessions".into()).await.json()["sessions"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = s
        .request(
            "DELETE",
            &format!("/v1/users/web/alice/sessions/{bob_id}"),
            &[("Authorization", &admin)],
            b"",
        )
        .await;
    assert_eq!(r.status, 404, "{r:?}");
    s.get(&format!("/valid?realm=web&token={bobs}"))
        .await
        .assert_text(200, "YES\nbob\nauth/file\n\n");
    let r = s
        .request(
            "DELETE",
            &format!("/v1/users/web/alice/sessions/{phone_id}"),
            &[("Authorization", &admin)],
            b"",
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    s.get(&format!("/valid?realm=web&token={phone}"))
        .await
        .assert_text(200, "NO\n");
    let r = s
        .request(
            "DELETE",
            "/v1/users/web/alice/sessions/not-hex",
            &[("Authorization", &admin)],
            b"",
        )
        .await;
    assert_eq!(r.status, 400, "{r:?}");

    // all but the caller's own (named by its token)
    let r = s
        .request(
            "DELETE",
            "/v1/users/web/alice/sessions",
            &[
                ("Authorization", &admin),
                ("Content-Type", "application/json"),
            ],
            serde_json::json!({"except_token": laptop})
                .to_string()
                .as_bytes(),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["revoked"], 1);
    s.get(&format!("/valid?realm=web&token={tablet}"))
        .await
        .assert_text(200, "NO\n");
    s.get(&format!("/valid?realm=web&token={laptop}"))
        .await
        .assert_text(200, "YES\nalice\nauth/file\n\n");

    // all
    let r = s
        .request(
            "DELETE",
            "/v1/users/web/alice/sessions",
            &[("Authorization", &admin)],
            b"",
        )
        .await;
    assert_eq!(r.json()["revoked"], 1, "{r:?}");
    s.get(&format!("/valid?realm=web&token={laptop}"))
        .await
        .assert_text(200, "NO\n");
    s.get(&format!("/valid?realm=web&token={bobs}"))
        .await
        .assert_text(200, "YES\nbob\nauth/file\n\n");
}

#[tokio::test]
async fn user_session_admin_is_absent_without_a_credential_and_unsupported_on_memcached() {
    let s = Server::start(Options::default());
    let r = s.get("/v1/users/rc/alice/sessions").await;
    assert_eq!(r.status, 404, "{r:?}");
    let Some(url) = service("SESSIOND_TEST_MEMCACHED", None) else {
        return;
    };
    let m = Server::start(options("memcached", &url, &unique("sessiond-srvtest")));
    let r = m
        .request(
            "GET",
            "/v1/users/rc/alice/sessions",
            &[("Authorization", &format!("Bearer {ADMIN}"))],
            b"",
        )
        .await;
    assert_eq!(r.status, 501, "{r:?}");
    assert_eq!(r.json()["error"], "not_supported");
    assert!(
        r.json()["message"].as_str().unwrap().contains("memcached"),
        "{r:?}"
    );
}

/// A Redis server of the test's own, persisting every write so that a token
/// survives its restart.
struct OwnRedis {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl OwnRedis {
    fn start() -> OwnRedis {
        let port = free_port();
        let mut r = OwnRedis {
            port,
            dir: tempfile::tempdir().unwrap(),
            child: None,
        };
        r.restart();
        r
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (Debian package redis-server) must be installed");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        // accepting connections is not yet loading the AOF: wait for PING
        let client = redis::Client::open(self.url()).unwrap();
        loop {
            if let Ok(mut c) = client.get_connection() {
                if redis::cmd("PING").query::<String>(&mut c).is_ok() {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "redis-server did not answer");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Kill Redis mid-traffic: every answer is YES or 503 — never NO, never a
/// hang — /readyz fails and the error metric counts; after a restart the
/// same sessiond serves again, the token still good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_answers_503_then_recovers() {
    if !common::installed("redis-server", "--version") {
        common::missing::<()>("redis-server is not installed");
        return;
    }
    let mut redis = OwnRedis::start();
    let s = Arc::new(Server::start(options("redis", &redis.url(), "outage")));
    let t = login(&s, "rc", "alice", "alice-pw").await;
    s.get(&format!("/valid?realm=rc&token={t}"))
        .await
        .assert_text(200, "YES\nalice\nauth/file\n\n");
    s.get("/readyz").await.assert_text(200, "ready\n");

    // background traffic for the whole outage
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = {
        let (s, t, stop) = (s.clone(), t.clone(), stop.clone());
        tokio::spawn(async move {
            let (mut yes, mut unavailable) = (0u32, 0u32);
            let mut slowest = Duration::ZERO;
            while !stop.load(Ordering::Relaxed) {
                let asked = Instant::now();
                let r = s.get(&format!("/valid?realm=rc&token={t}")).await;
                slowest = slowest.max(asked.elapsed());
                match (r.status, r.text().as_str()) {
                    (200, "YES\nalice\nauth/file\n\n") => yes += 1,
                    (503, _) => unavailable += 1,
                    other => panic!("during an outage only YES or 503 may answer: {other:?}"),
                }
            }
            (yes, unavailable, slowest)
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    redis.kill();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let r = s.get(&format!("/valid?realm=rc&token={t}")).await;
    r.assert_text(503, "ERR: session store unavailable; try again\n");
    let r = s
        .post_json(
            "/v1/validate",
            serde_json::json!({"realm": "rc", "token": t}),
        )
        .await;
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(r.json()["error"], "store_unavailable");
    let r = s.get("/readyz").await;
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(
        r.text(),
        "not ready: the session store is unreachable\n",
        "no back-end detail to anyone who asks"
    );
    assert!(!r.text().contains("127.0.0.1"));
    let started = Instant::now();
    let r = s.get("/auth_token?realm=rc&user=alice&pwd=alice-pw").await;
    assert_eq!(r.status, 503, "a login cannot be stored: {r:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "no hang");
    let metrics = s.get("/metrics").await.text();
    let errors: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("sessiond_store_errors_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(errors >= 3.0, "store errors counted:\n{metrics}");

    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = s.get(&format!("/valid?realm=rc&token={t}")).await;
        if r.status == 200 {
            r.assert_text(200, "YES\nalice\nauth/file\n\n");
            break;
        }
        assert!(Instant::now() < deadline, "did not recover: {r:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    s.get("/readyz").await.assert_text(200, "ready\n");
    stop.store(true, Ordering::Relaxed);
    let (yes, unavailable, slowest) = traffic.await.unwrap();
    assert!(yes > 0 && unavailable > 0, "yes {yes}, 503 {unavailable}");
    eprintln!(
        "outage traffic: {yes} YES, {unavailable} 503, no other answer; slowest answer {slowest:?}"
    );
    assert!(
        slowest < Duration::from_secs(5),
        "an answer took {slowest:?}"
    );
    let fresh = login(&s, "rc", "bob", "bob-pw").await;
    s.get(&format!("/valid?realm=rc&token={fresh}"))
        .await
        .assert_text(200, "YES\nbob\nauth/file\n\n");
}

/// `rediss://` with a private CA (`store.tls_ca_file`): sessions work over
/// TLS, and without the CA the server refuses to start with a clear error.
#[tokio::test]
async fn redis_over_tls_with_a_private_ca() {
    if !common::installed("redis-server", "--version") {
        common::missing::<()>("redis-server is not installed");
        return;
    }
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert_pem, key_pem) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_pem, cert.cert.pem()).unwrap();
    std::fs::write(&key_pem, cert.signing_key.serialize_pem()).unwrap();
    let port = free_port();
    let mut child = Command::new("redis-server")
        .args(["--port", "0", "--bind", "127.0.0.1", "--save", ""])
        .args(["--tls-port", &port.to_string(), "--tls-auth-clients", "no"])
        .arg("--tls-cert-file")
        .arg(&cert_pem)
        .arg("--tls-key-file")
        .arg(&key_pem)
        .arg("--tls-ca-cert-file")
        .arg(&cert_pem)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "redis-server (TLS) did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let url = format!("rediss://127.0.0.1:{port}");

    let refused = Server::try_start(options("redis", &url, "tls"));
    let err = refused
        .err()
        .expect("an untrusted certificate must be refused");
    assert!(err.contains("store.url"), "{err}");

    let s = Server::start(
        options("redis", &url, "tls")
            .env("SESSIOND_STORE__TLS_CA_FILE", cert_pem.to_str().unwrap()),
    );
    let t = login(&s, "rc", "alice", "alice-pw").await;
    s.get(&format!("/valid?realm=rc&token={t}"))
        .await
        .assert_text(200, "YES\nalice\nauth/file\n\n");
    let _ = child.kill();
    let _ = child.wait();
}

/// memcached killed and started again: 503 while it is down (never NO),
/// and the same sessiond serves again afterwards (memcached keeps nothing,
/// so the old token is gone; a new login works).
#[tokio::test]
async fn memcached_outage_answers_503_then_recovers() {
    if !common::installed("memcached", "-V") {
        common::missing::<()>("memcached is not installed");
        return;
    }
    let port = free_port();
    let start = || {
        let mut cmd = Command::new("memcached");
        cmd.args(["-l", "127.0.0.1", "-p", &port.to_string(), "-U", "0"]);
        // memcached refuses to run as root without a user to switch to
        if running_as_root() {
            cmd.args(["-u", "nobody"]);
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "memcached did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        child
    };
    let mut mc = start();
    let s = Server::start(options("memcached", &format!("127.0.0.1:{port}"), "outage"));
    let t = login(&s, "rc", "alice", "alice-pw").await;
    s.get(&format!("/valid?realm=rc&token={t}"))
        .await
        .assert_text(200, "YES\nalice\nauth/file\n\n");
    let _ = mc.kill();
    let _ = mc.wait();
    for _ in 0..3 {
        s.get(&format!("/valid?realm=rc&token={t}"))
            .await
            .assert_text(503, "ERR: session store unavailable; try again\n");
    }
    assert_eq!(s.get("/readyz").await.status, 503);
    let mut mc = start();
    let deadline = Instant::now() + Duration::from_secs(15);
    let fresh = loop {
        let r = s.get("/auth_token?realm=rc&user=bob&pwd=bob-pw").await;
        if r.status == 200 {
            break r.text().lines().next().unwrap().to_owned();
        }
        assert_eq!(r.status, 503, "{r:?}");
        assert!(Instant::now() < deadline, "did not recover: {r:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    s.get(&format!("/valid?realm=rc&token={fresh}"))
        .await
        .assert_text(200, "YES\nbob\nauth/file\n\n");
    s.get("/readyz").await.assert_text(200, "ready\n");
    let _ = mc.kill();
    let _ = mc.wait();
}

fn running_as_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `sessiond token …` with the store given by environment, as a deployment
/// would; (exit success, stdout).
fn token_cli(env: &[(&str, &str)], args: &[&str], stdin: &str) -> (bool, String) {
    use std::io::Write;
    let mut cmd = Command::new(common::BIN);
    cmd.arg("token")
        .args(args)
        .env_remove("SESSIOND_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.code().is_some_and(|c| c <= 1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// On a shared store the token commands work beside running servers: what
/// the command issues, the server accepts, and the other way round.
#[tokio::test]
async fn token_cli_beside_a_running_server_on_redis() {
    let Some(keys) = test_redis() else { return };
    let (url, prefix) = (keys.0.clone(), keys.1.clone());
    let s = Server::start(options("redis", &url, &prefix));
    let env = [
        ("SESSIOND_STORE__KIND", "redis"),
        ("SESSIOND_STORE__URL", url.as_str()),
        ("SESSIOND_STORE__PREFIX", prefix.as_str()),
    ];

    let (ok, out) = token_cli(&env, &["issue", "--realm", "rc", "--user", "alice"], "");
    assert!(ok);
    let issued = out.lines().next().unwrap().to_owned();
    s.get(&format!("/valid?realm=rc&token={issued}"))
        .await
        .assert_text(200, "YES\nalice\ncli\n\n");

    // a password login through the server supersedes it, as any login would
    let t = login(&s, "rc", "alice", "alice-pw").await;
    assert_eq!(
        token_cli(&env, &["check", "--realm", "rc"], &issued),
        (false, "SUPERCEDED\nalice\ncli\n".to_owned())
    );
    assert_eq!(
        token_cli(&env, &["check", "--realm", "rc"], &t),
        (true, "YES\nalice\nauth/file\n".to_owned())
    );
    assert_eq!(
        token_cli(&env, &["revoke", "--realm", "rc"], &t),
        (true, "OK\n".to_owned())
    );
    s.get(&format!("/valid?realm=rc&token={t}"))
        .await
        .assert_text(200, "NO\n");
}

/// Two instances on one Redis enforce one failed-login limit: failures on
/// one count on the other (the store keeps the counts).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_count_across_instances() {
    let Some(keys) = test_redis() else { return };
    let limited = || {
        options("redis", &keys.0, &keys.1)
            .env("SESSIOND_AUTH__MAX_FAILURES_PER_USER", "2")
            .env("SESSIOND_AUTH__FAILURE_WINDOW", "1m")
    };
    let a = Server::start(limited());
    let b = Server::start(limited());
    for s in [&a, &b] {
        s.get("/auth_token?realm=rc&user=alice&pwd=wrong")
            .await
            .assert_bare(403);
    }
    let r = a.get("/auth_token?realm=rc&user=alice&pwd=alice-pw").await;
    assert_eq!(r.status, 429, "the other instance's failure counted: {r:?}");
    assert!(r.header("retry-after").is_some());
    let r = b.get("/auth_token?realm=rc&user=bob&pwd=bob-pw").await;
    assert_eq!(r.status, 200, "other accounts are not held back: {r:?}");
}

/// A stuck PostgreSQL (a table locked by someone else) fails a check with
/// 503 within the store's statement and lock timeouts, not with 408 once
/// the whole request timeout has passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_postgres_answers_503_quickly() {
    let Some(pg) = test_postgres() else { return };
    let (url, schema) = (pg.0.clone(), pg.1.clone());
    let s = Server::start(
        options("postgres", &url, &schema).env("SESSIOND_SERVER__REQUEST_TIMEOUT", "20s"),
    );
    let t = login(&s, "rc", "alice", "alice-pw").await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let mut locker = pool.begin().await.unwrap();
    sqlx::query(&format!(
        "LOCK TABLE {schema}.sessions IN ACCESS EXCLUSIVE MODE"
    ))
    .execute(&mut *locker)
    .await
    .unwrap();
    let started = Instant::now();
    let r = s.get(&format!("/valid?realm=rc&token={t}")).await;
    let took = started.elapsed();
    locker.rollback().await.unwrap();
    r.assert_text(503, "ERR: session store unavailable; try again\n");
    assert!(took < Duration::from_secs(8), "answered after {took:?}");
    s.get(&format!("/valid?realm=rc&token={t}"))
        .await
        .assert_text(200, "YES\nalice\nauth/file\n\n");
}

/// Polls `path` on `s` until it answers `want`; how long that took.
async fn within(s: &Server, path: &str, want: (u16, &str), limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let r = s.get(path).await;
        if (r.status, r.text().as_str()) == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "{path}: still {r:?} after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// The value of the sample `name` (with its labels, as written) in a
/// `/metrics` page.
fn metric(page: &str, name: &str) -> Option<f64> {
    page.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
}

/// Two instances with `[store.cache]` on: a revocation, a superseding
/// login and a logout on B reach A's cache within a second (the store's
/// invalidation; bench/propagation.sh measures how fast).
async fn near_cache_two_instances(kind: &str, url: &str, prefix: &str) {
    let cached = |o: Options| o.env("SESSIOND_STORE__CACHE__ENABLED", "true");
    let a = Server::start(cached(options(kind, url, prefix)));
    let b = Server::start(cached(options(kind, url, prefix)));
    let second = Duration::from_secs(1);
    let yes = (200, "YES\nalice\nauth/file\n\n");

    // A's cache is used once its invalidation channel is up (on a cluster,
    // one tracking connection per primary, made after start-up); until
    // then checks bypass it, which is right but would not count as hits
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(&a.get("/metrics").await.text(), "sessiond_near_cache_live") != Some(1.0) {
        assert!(Instant::now() < deadline, "A's near cache never went live");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let t = login(&b, "rc", "alice", "alice-pw").await;
    let valid = format!("/valid?realm=rc&token={t}");
    for _ in 0..3 {
        a.get(&valid).await.assert_text(yes.0, yes.1);
    }
    b.get(&format!("/revoke?realm=rc&token={t}"))
        .await
        .assert_text(200, "OK\n");
    within(&a, &valid, (200, "NO\n"), second).await;

    let old = login(&b, "rc", "alice", "alice-pw").await;
    let valid = format!("/valid?realm=rc&token={old}");
    a.get(&valid).await.assert_text(yes.0, yes.1);
    login(&b, "rc", "alice", "alice-pw").await;
    within(
        &a,
        &valid,
        (200, "SUPERCEDED\nalice\nauth/file\n\n"),
        second,
    )
    .await;

    // a browser logout on B (the v1 API here) ends the session on A too
    let t = login(&b, "rc", "bob", "bob-pw").await;
    let valid = format!("/valid?realm=rc&token={t}");
    a.get(&valid)
        .await
        .assert_text(200, "YES\nbob\nauth/file\n\n");
    let r = b
        .post_json("/v1/revoke", serde_json::json!({"realm": "rc", "token": t}))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    within(&a, &valid, (200, "NO\n"), second).await;

    // what the cache did, on /metrics
    let metrics = a.get("/metrics").await.text();
    let count =
        |name: &str| metric(&metrics, name).unwrap_or_else(|| panic!("{name} in {metrics}"));
    assert!(
        count("sessiond_near_cache_checks_total{result=\"hit\"}") >= 2.0,
        "{metrics}"
    );
    assert!(
        count("sessiond_near_cache_checks_total{result=\"miss\"}") >= 3.0,
        "{metrics}"
    );
    assert_eq!(count("sessiond_near_cache_live"), 1.0, "{metrics}");
}

#[tokio::test]
async fn redis_near_cache_two_instances() {
    let Some(r) = test_redis() else { return };
    near_cache_two_instances("redis", &r.0, &r.1).await;
}

#[tokio::test]
async fn redis_cluster_near_cache_two_instances() {
    let Some(nodes) = service("SESSIOND_TEST_REDIS_CLUSTER", None) else {
        return;
    };
    near_cache_two_instances("redis-cluster", &nodes, &unique("sessiond-srvtest")).await;
}

#[tokio::test]
async fn postgres_near_cache_two_instances() {
    let Some(pg) = test_postgres() else { return };
    near_cache_two_instances("postgres", &pg.0, &pg.1).await;
}

/// With the near cache on, Redis going away still answers 503 — the cache
/// is dropped with its invalidation channel — never a YES from memory.
#[tokio::test]
async fn redis_outage_with_the_near_cache_answers_503() {
    if !common::installed("redis-server", "--version") {
        common::missing::<()>("redis-server is not installed");
        return;
    }
    let mut redis = OwnRedis::start();
    let s = Server::start(
        options("redis", &redis.url(), "outage-cached")
            .env("SESSIOND_STORE__CACHE__ENABLED", "true"),
    );
    let t = login(&s, "rc", "alice", "alice-pw").await;
    let valid = format!("/valid?realm=rc&token={t}");
    for _ in 0..3 {
        s.get(&valid)
            .await
            .assert_text(200, "YES\nalice\nauth/file\n\n");
    }
    redis.kill();
    // the loss is noticed at once when the connection closes, and within
    // four heartbeats (1 s) when it goes silent
    within(
        &s,
        &valid,
        (503, "ERR: session store unavailable; try again\n"),
        Duration::from_secs(2),
    )
    .await;
}

#[test]
fn the_near_cache_is_refused_where_it_has_nothing_to_do() {
    for (kind, why) in [
        ("memory", "answers from this process already"),
        ("file", "answers from this process already"),
    ] {
        let err = Server::try_start(
            Options::default()
                .env("SESSIOND_STORE__KIND", kind)
                .env("SESSIOND_STORE__URL", "redis://127.0.0.1:1")
                .env("SESSIOND_STORE__CACHE__ENABLED", "true"),
        )
        .err()
        .expect("refused");
        assert!(
            err.contains("store.cache") && err.contains(why),
            "{kind}: {err}"
        );
    }
}
