//! Signed tickets against the real binary: issue at login, `/auth` and
//! `/valid`, refresh and remove, rotation, revocation (admin and password
//! change) — and interoperability both ways with the real peers: Apache
//! httpd with mod_auth_tkt, plone.session's tktauth, Paste and Pyramid.
//!
//! The peers come from `scripts/test.sh`: `SESSIOND_TEST_TICKET_PYTHON` (a
//! virtualenv's python with Paste, pyramid and plone.session) and
//! `SESSIOND_TEST_APACHE` (Debian's apache2 with libapache2-mod-auth-tkt).

mod common;

use common::{Options, Resp, Server, BIN};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const SECRET: &str = "abcdefghijklmnopqrstuvwxyz0123456789";
const OLD_SECRET: &str = "an-older-secret-still-accepted-0001";
const ADMIN: &str = "ticket-admin-credential-0123456789";
const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A server whose realm `web` issues tickets with `ticket` settings (TOML lines).
fn server(ticket: &str) -> Server {
    let dir = tempfile::tempdir().unwrap().keep();
    std::fs::write(dir.join("secrets"), format!("{SECRET}\n{OLD_SECRET}\n")).unwrap();
    std::fs::write(dir.join("admin"), ADMIN).unwrap();
    let config = format!(
        "[server]\nadmin_token_file = {admin:?}\n\
         [browser.cookie]\nsecure = false\n\
         [realms.web.ticket]\nsecrets_file = {secrets:?}\ncookie_secure = false\n{ticket}\n",
        admin = dir.join("admin"),
        secrets = dir.join("secrets"),
    );
    std::fs::write(dir.join("sessiond.toml"), config).unwrap();
    let cfg = dir.join("sessiond.toml");
    Server::start(Options {
        dir: Some(dir),
        ..Options::default()
            .user("alice", "alice-pw")
            .args(&["-c", cfg.to_str().unwrap()])
    })
}

fn cookie_named<'a>(r: &'a Resp, name: &str) -> Option<&'a str> {
    r.header_all("set-cookie")
        .into_iter()
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(|c| c.split(';').next().unwrap().split_once('=').unwrap().1)
}

async fn login(s: &Server) -> Resp {
    s.request(
        "POST",
        "/session/login_password",
        &[FORM, ("Origin", "http://localhost")],
        b"user=alice&password=alice-pw",
    )
    .await
}

async fn auth_with(s: &Server, cookie: &str) -> Resp {
    s.request("GET", "/auth", &[("Cookie", cookie)], b"").await
}

#[tokio::test]
async fn login_issues_a_ticket_that_auth_and_valid_accept() {
    let s = server("digest = \"sha512\"");
    let r = login(&s).await;
    assert_eq!(r.status, 303, "{r:?}");
    let ticket = cookie_named(&r, "auth_tkt")
        .expect("a ticket cookie")
        .to_owned();
    assert!(
        cookie_named(&r, "sessiond").is_some(),
        "and a session: {r:?}"
    );
    let full = r.header_all("set-cookie").join(" | ");
    assert!(
        full.contains("auth_tkt=") && full.contains("HttpOnly"),
        "{full}"
    );

    let ok = auth_with(&s, &format!("auth_tkt={ticket}")).await;
    assert_eq!(ok.status, 200, "{ok:?}");
    assert_eq!(ok.header("x-remote-user"), Some("alice"));
    assert_eq!(ok.header("x-remote-realm"), Some("web"));
    assert_eq!(ok.header("x-auth-source"), Some("ticket"));
    assert_eq!(ok.header("set-cookie"), None, "fresh: no refresh yet");

    let valid = s
        .get(&format!("/valid?realm=web&token={}", urlenc(&ticket)))
        .await;
    valid.assert_text(200, "YES\nalice\nticket\n\n");
    // /v1/validate takes a ticket in the token's place as /valid does (it
    // used not to: the one check step, http/check.rs, serves both now).
    let v1 = s
        .post_json(
            "/v1/validate",
            serde_json::json!({"realm": "web", "token": ticket}),
        )
        .await;
    assert_eq!(v1.status, 200, "{v1:?}");
    assert_eq!(v1.json()["status"], "valid");
    assert_eq!(v1.json()["session"]["user"], "alice");
    assert_eq!(v1.json()["session"]["source"], "ticket");

    // Tampering with any character of the ticket is refused.
    let raw = base64_decode(&ticket);
    for i in [0, 130, 140, raw.len() - 1] {
        let mut bad = raw.clone();
        bad[i] ^= 1;
        let bad = base64_encode(&bad);
        let r = auth_with(&s, &format!("auth_tkt={bad}")).await;
        assert_eq!(r.status, 401, "byte {i} changed: {r:?}");
        let v = s
            .get(&format!("/valid?realm=web&token={}", urlenc(&bad)))
            .await;
        v.assert_text(200, "NO\n");
    }
    // Another realm does not take this realm's tickets.
    let v = s
        .get(&format!("/valid?realm=other&token={}", urlenc(&ticket)))
        .await;
    v.assert_text(200, "NO\n");
}

#[tokio::test]
async fn ticket_only_realm_keeps_no_server_side_session() {
    let s = server("with_session = false\ndigest = \"hmac-sha256\"\ncookie_name = \"__ac\"");
    let r = s
        .request(
            "POST",
            "/session/login_password",
            &[
                FORM,
                ("X-Requested-With", "XMLHttpRequest"),
                ("Origin", "http://localhost"),
            ],
            b"user=alice&password=alice-pw",
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header_all("set-cookie").len(), 1, "{r:?}");
    let ticket = cookie_named(&r, "__ac").unwrap().to_owned();
    let ok = auth_with(&s, &format!("__ac={ticket}")).await;
    assert_eq!(ok.header("x-remote-user"), Some("alice"), "{ok:?}");
    // Logout clears the ticket cookie.
    let out = s
        .request(
            "POST",
            "/session/logout",
            &[
                ("Origin", "http://localhost"),
                ("Cookie", &format!("__ac={ticket}")),
            ],
            b"",
        )
        .await;
    assert!(
        out.header_all("set-cookie")
            .iter()
            .any(|c| c.starts_with("__ac=;") && c.contains("Max-Age=0")),
        "{out:?}"
    );
}

#[tokio::test]
async fn rotation_old_secret_verifies_and_is_reissued() {
    let s = server("digest = \"sha256\"");
    let old = sign_cli(&["--digest", "sha256", "--user", "alice"], OLD_SECRET);
    let r = auth_with(&s, &format!("auth_tkt={old}")).await;
    assert_eq!(r.status, 200, "{r:?}");
    let renewed = cookie_named(&r, "auth_tkt").expect("re-issued with the current secret");
    let check = Command::new(BIN)
        .args([
            "ticket",
            "verify",
            "--digest",
            "sha256",
            "--secrets-env",
            "T",
            renewed,
        ])
        .env("T", SECRET)
        .output()
        .unwrap();
    assert!(check.status.success(), "{check:?}");
    let unknown = sign_cli(
        &["--digest", "sha256", "--user", "alice"],
        "some-other-secret-nobody-has",
    );
    assert_eq!(
        auth_with(&s, &format!("auth_tkt={unknown}")).await.status,
        401
    );
}

/// A ticket signed by a peer (which checks nothing) with a newline in its
/// user id must not inject lines into `/valid` nor pass `/auth`.
#[tokio::test]
async fn peer_tickets_with_control_characters_in_the_user_are_refused() {
    let s = server("digest = \"sha256\"");
    let evil = sign_cli(&["--digest", "sha256", "--user", "eve\nYES"], SECRET);
    let r = auth_with(&s, &format!("auth_tkt={evil}")).await;
    assert_eq!(r.status, 401, "{r:?}");
    assert!(r.header("x-remote-user").is_none());
    let r = s
        .get(&format!("/valid?realm=web&token={}", urlenc(&evil)))
        .await;
    assert_eq!(r.text(), "NO\n", "{r:?}");
    // The same ticket for a plain name passes: only the name was refused.
    let good = sign_cli(&["--digest", "sha256", "--user", "eve"], SECRET);
    let r = auth_with(&s, &format!("auth_tkt={good}")).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("x-remote-user"), Some("eve"));
}

#[tokio::test]
async fn expired_and_future_tickets_are_refused_and_refresh_follows_the_fraction() {
    let s = server("digest = \"sha256\"\ntimeout = \"1h\"\nrefresh = 0.5\nclock_skew = \"1m\"");
    let at = |secs: u64| {
        sign_cli(
            &[
                "--digest",
                "sha256",
                "--user",
                "alice",
                "--time",
                &secs.to_string(),
            ],
            SECRET,
        )
    };
    let fresh = auth_with(&s, &format!("auth_tkt={}", at(now() - 60))).await;
    assert_eq!((fresh.status, fresh.header("set-cookie")), (200, None));
    let old = auth_with(&s, &format!("auth_tkt={}", at(now() - 2400))).await;
    assert_eq!(old.status, 200);
    assert!(
        cookie_named(&old, "auth_tkt").is_some(),
        "less than half left: refreshed"
    );
    assert_eq!(
        auth_with(&s, &format!("auth_tkt={}", at(now() - 3700)))
            .await
            .status,
        401
    );
    assert_eq!(
        auth_with(&s, &format!("auth_tkt={}", at(now() + 600)))
            .await
            .status,
        401
    );
}

#[tokio::test]
async fn refresh_and_remove_resources() {
    let s = server("refresh_max_age = \"10m\"");
    let ticket = cookie_named(&login(&s).await, "auth_tkt")
        .unwrap()
        .to_owned();
    let r = s
        .request(
            "GET",
            "/ticket/refresh",
            &[("Cookie", &format!("auth_tkt={ticket}"))],
            b"",
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("content-type"), Some("text/css"));
    assert!(cookie_named(&r, "auth_tkt").is_some(), "{r:?}");
    assert!(
        r.header("cache-control")
            .unwrap()
            .starts_with("private, must-revalidate"),
        "{r:?}"
    );
    assert!(
        r.header("cache-control").unwrap().contains("max-age=600"),
        "{r:?}"
    );
    let anon = s.get("/ticket/refresh?type=gif").await;
    assert_eq!(anon.header("content-type"), Some("image/gif"));
    assert!(anon.body.starts_with(b"GIF89a"));
    assert_eq!(anon.header("set-cookie"), None);
    assert_eq!(anon.header("vary"), Some("Cookie"));
    let gone = s.get("/ticket/remove?type=js").await;
    let c = gone.header("set-cookie").unwrap();
    assert!(
        c.starts_with("auth_tkt=;") && c.contains("Max-Age=0"),
        "{c}"
    );
    assert_eq!(
        gone.header("cache-control"),
        Some("public, must-revalidate, max-age=0, s-maxage=86400")
    );
    let bad = s.get("/ticket/refresh?type=png").await;
    assert_eq!(bad.status, 400, "{bad:?}");
    assert!(bad.text().contains("png"));
    assert_eq!(s.get("/ticket/refresh?realm=nope").await.status, 404);
}

#[tokio::test]
async fn revocation_by_admin_and_by_password_change() {
    let s = server("");
    let first = cookie_named(&login(&s).await, "auth_tkt")
        .unwrap()
        .to_owned();
    assert_eq!(
        auth_with(&s, &format!("auth_tkt={first}")).await.status,
        200
    );
    let auth = format!("Bearer {ADMIN}");
    let r = s
        .request(
            "DELETE",
            "/v1/users/web/alice/tickets",
            &[("Authorization", &auth)],
            b"",
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let nb = r.json()["not_before"].as_i64().unwrap();
    assert!(nb > now() as i64 - 5);
    let r = auth_with(&s, &format!("auth_tkt={first}")).await;
    assert_eq!(r.status, 401, "revoked: {r:?}");
    let r = s
        .request(
            "GET",
            "/v1/users/web/alice/tickets",
            &[("Authorization", &auth)],
            b"",
        )
        .await;
    assert_eq!(r.json()["not_before"].as_i64(), Some(nb));
    assert_eq!(
        s.request(
            "DELETE",
            "/v1/users/web/alice/tickets",
            &[("Authorization", "Bearer wrong")],
            b""
        )
        .await
        .status,
        403
    );
    // A login right after the revocation works at once.
    let second = cookie_named(&login(&s).await, "auth_tkt")
        .unwrap()
        .to_owned();
    assert_eq!(
        auth_with(&s, &format!("auth_tkt={second}")).await.status,
        200
    );

    // Changing the password with the CLI ends the tickets within seconds.
    common::user_cli(&s.dir, "passwd", "alice", Some("new-pw"));
    let mut refused = false;
    for _ in 0..50 {
        if auth_with(&s, &format!("auth_tkt={second}")).await.status == 401 {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        refused,
        "the ticket survived a password change: {}",
        s.stderr()
    );
}

#[tokio::test]
async fn bad_ticket_configuration_fails_at_start_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    for (body, expect) in [
        (
            "digest = \"md4\"\nsecrets_env = \"X\"",
            "realms.web.ticket.digest: \"md4\" is not one of",
        ),
        ("refresh = 2.0\nsecrets_env = \"X\"", "ticket.refresh"),
        ("", "tickets need secrets"),
        (
            "secrets_env = \"SESSIOND_TEST_NO_SUCH_VAR\"",
            "SESSIOND_TEST_NO_SUCH_VAR is not set",
        ),
        (
            "digest = \"hmac-sha256\"\ncookie_encoding = \"raw\"\nsecrets_env = \"X\"",
            "raw cookies need a hex digest",
        ),
    ] {
        let cfg = dir.path().join("c.toml");
        std::fs::write(
            &cfg,
            format!("[realms.web.ticket]\ncookie_secure = false\n{body}\n"),
        )
        .unwrap();
        let err = Server::try_start(
            Options::default()
                .env("X", SECRET)
                .args(&["-c", cfg.to_str().unwrap()]),
        )
        .err()
        .unwrap_or_else(|| panic!("started with {body:?}"));
        assert!(err.contains(expect), "{body:?}: {err}");
    }
}

// ---------------------------------------------------------------------------
// Interoperability with the real implementations.

fn sign_cli(args: &[&str], secret: &str) -> String {
    let out = Command::new(BIN)
        .args(["ticket", "sign", "--secrets-env", "T"])
        .args(args)
        .env("T", secret)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn require(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => common::missing(&format!("{var} is not set (scripts/test.sh sets it)")),
    }
}

fn peers_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/ticket_peers.py")
}

fn peer(python: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(python)
        .arg(peers_script())
        .args(args)
        .output()
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).unwrap().trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The peer's cookie for alice, without tokens or data.
fn peer_sign_alice(
    python: &str,
    imp: &str,
    digest: &str,
    secret: &str,
    ip: &str,
    time: &str,
) -> String {
    peer(
        python,
        &["sign", imp, digest, secret, "alice", "", "", ip, time],
    )
    .unwrap()
}

/// Each Python peer and digest: the peer signs, sessiond verifies (through
/// its own server's `/auth`); sessiond signs, the peer verifies; tampered
/// peer tickets are refused.
#[tokio::test]
async fn python_peers_both_ways() {
    let Some(python) = require("SESSIOND_TEST_TICKET_PYTHON") else {
        return;
    };
    let cases = [
        ("plone", "hmac-sha256", "raw", "base64"),
        ("plone", "md5", "raw", "base64"),
        ("paste", "md5", "percent", "raw"),
        ("paste", "sha256", "percent", "raw"),
        ("paste", "sha512", "percent", "raw"),
        ("pyramid", "md5", "percent", "raw"),
        ("pyramid", "sha256", "percent", "raw"),
        ("pyramid", "sha512", "percent", "raw"),
    ];
    for (imp, digest, user_id, encoding) in cases {
        let s = server(&format!(
            "digest = {digest:?}\nuser_id = {user_id:?}\ncookie_encoding = {encoding:?}"
        ));
        let t = now().to_string();
        let from_peer = peer(
            &python,
            &[
                "sign", imp, digest, SECRET, "alice", "a,b", "Joe", "0.0.0.0", &t,
            ],
        )
        .unwrap();
        let r = auth_with(&s, &format!("auth_tkt={from_peer}")).await;
        assert_eq!(r.status, 200, "{imp}/{digest} ticket {from_peer}: {r:?}");
        assert_eq!(r.header("x-remote-user"), Some("alice"), "{imp}/{digest}");

        // Tampered, wrong secret, expired: refused.
        let mut tampered = from_peer.clone().into_bytes();
        let i = tampered.len() - 3;
        tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert_eq!(
            auth_with(&s, &format!("auth_tkt={tampered}")).await.status,
            401,
            "{imp}/{digest} tampered"
        );
        let wrong = peer_sign_alice(
            &python,
            imp,
            digest,
            "not-the-secret-at-all-000",
            "0.0.0.0",
            &t,
        );
        assert_eq!(
            auth_with(&s, &format!("auth_tkt={wrong}")).await.status,
            401,
            "{imp}/{digest} wrong secret"
        );
        let old = (now() - 3 * 3600).to_string();
        let expired = peer_sign_alice(&python, imp, digest, SECRET, "0.0.0.0", &old);
        assert_eq!(
            auth_with(&s, &format!("auth_tkt={expired}")).await.status,
            401,
            "{imp}/{digest} expired"
        );

        // sessiond signs (login), the peer verifies.
        let ticket = cookie_named(&login(&s).await, "auth_tkt")
            .unwrap()
            .to_owned();
        let seen = peer(
            &python,
            &[
                "verify",
                imp,
                digest,
                SECRET,
                &ticket,
                "0.0.0.0",
                &now().to_string(),
                "7200",
            ],
        )
        .unwrap_or_else(|e| panic!("{imp}/{digest} refused sessiond's {ticket}: {e}"));
        let seen: serde_json::Value = serde_json::from_str(&seen).unwrap();
        assert_eq!(seen["user"], "alice", "{imp}/{digest}");
    }
}

/// IP binding as the peers hash it: a ticket bound to 127.0.0.1 by plone's
/// tktauth is accepted from 127.0.0.1 only, and the other way round.
#[tokio::test]
async fn python_peer_address_binding() {
    let Some(python) = require("SESSIOND_TEST_TICKET_PYTHON") else {
        return;
    };
    let s = server("digest = \"md5\"\nbind_address = true");
    let t = now().to_string();
    let bound = peer_sign_alice(&python, "plone", "md5", SECRET, "127.0.0.1", &t);
    assert_eq!(
        auth_with(&s, &format!("auth_tkt={bound}")).await.status,
        200
    );
    let elsewhere = peer_sign_alice(&python, "plone", "md5", SECRET, "192.0.2.1", &t);
    assert_eq!(
        auth_with(&s, &format!("auth_tkt={elsewhere}")).await.status,
        401
    );
    let ticket = cookie_named(&login(&s).await, "auth_tkt")
        .unwrap()
        .to_owned();
    let now = now().to_string();
    assert!(peer(
        &python,
        &[
            "verify",
            "plone",
            "md5",
            SECRET,
            &ticket,
            "127.0.0.1",
            &now,
            "7200"
        ]
    )
    .is_ok());
    assert!(peer(
        &python,
        &["verify", "plone", "md5", SECRET, &ticket, "0.0.0.0", &now, "7200"]
    )
    .is_err());
}

struct Apache {
    dir: tempfile::TempDir,
    binary: String,
    ports: Vec<u16>,
}

impl Drop for Apache {
    fn drop(&mut self) {
        let _ = Command::new(&self.binary)
            .args([
                "-f",
                self.dir.path().join("httpd.conf").to_str().unwrap(),
                "-k",
                "stop",
            ])
            .status();
    }
}

/// Apache with one virtual host per digest type, each guarding /protected
/// with mod_auth_tkt, refreshing on every request (`TKTAuthTimeoutRefresh 1`).
fn start_apache(binary: &str) -> Apache {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    let root = root.as_path();
    std::fs::create_dir_all(root.join("htdocs/protected")).unwrap();
    std::fs::write(root.join("htdocs/protected/index.html"), "ok\n").unwrap();
    Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(root)
        .status()
        .unwrap();
    let modules = "/usr/lib/apache2/modules";
    let mut conf = format!(
        "ServerRoot {r}\nPidFile {r}/httpd.pid\nErrorLog {r}/error.log\nLogLevel warn\n\
         LoadModule mpm_event_module {modules}/mod_mpm_event.so\n\
         LoadModule authz_core_module {modules}/mod_authz_core.so\n\
         LoadModule authz_user_module {modules}/mod_authz_user.so\n\
         LoadModule authn_core_module {modules}/mod_authn_core.so\n\
         LoadModule headers_module {modules}/mod_headers.so\n\
         LoadModule auth_tkt_module {modules}/mod_auth_tkt.so\n\
         ServerName 127.0.0.1\nUser daemon\nGroup daemon\nDocumentRoot {r}/htdocs\n",
        r = root.display()
    );
    let mut ports = Vec::new();
    for (digest, ignore_ip) in [
        ("MD5", "on"),
        ("SHA256", "on"),
        ("SHA512", "on"),
        ("MD5", "off"),
    ] {
        let port = common::free_port();
        ports.push(port);
        conf.push_str(&format!(
            "Listen 127.0.0.1:{port}\n<VirtualHost 127.0.0.1:{port}>\n\
             TKTAuthSecret \"{SECRET}\"\nTKTAuthDigestType {digest}\n\
             <Location /protected>\nAuthType None\nTKTAuthLoginURL http://127.0.0.1/login\n\
             TKTAuthIgnoreIP {ignore_ip}\nTKTAuthTimeout 7200\nTKTAuthTimeoutRefresh 1\n\
             require valid-user\nHeader always set X-Remote-User \"expr=%{{REMOTE_USER}}\"\n\
             </Location>\n</VirtualHost>\n"
        ));
    }
    std::fs::write(root.join("httpd.conf"), conf).unwrap();
    let status = Command::new(binary)
        .args([
            "-f",
            root.join("httpd.conf").to_str().unwrap(),
            "-k",
            "start",
        ])
        .status()
        .unwrap();
    assert!(status.success(), "apache did not start");
    let apache = Apache {
        dir,
        binary: binary.to_owned(),
        ports,
    };
    for port in &apache.ports {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", *port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "apache is not listening: {}",
                std::fs::read_to_string(root.join("error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    apache
}

/// sessiond signs for Apache (MD5, SHA-256, SHA-512, and an address-bound
/// MD5 ticket); Apache accepts, names the user, and refreshes; the ticket
/// Apache issues on refresh (base64, `user!!data`) is accepted by sessiond.
#[tokio::test]
async fn apache_mod_auth_tkt_both_ways() {
    let Some(apache_bin) = require("SESSIOND_TEST_APACHE") else {
        return;
    };
    let apache = start_apache(&apache_bin);
    for (port, digest, bind) in [
        (apache.ports[0], "md5", false),
        (apache.ports[1], "sha256", false),
        (apache.ports[2], "sha512", false),
        (apache.ports[3], "md5", true),
    ] {
        let s = server(&format!("digest = {digest:?}\nbind_address = {bind}"));
        let ticket = cookie_named(&login(&s).await, "auth_tkt")
            .unwrap()
            .to_owned();
        let addr = format!("127.0.0.1:{port}");
        let r = apache_get(&addr, &ticket).await;
        assert_eq!(
            r.status, 200,
            "apache {digest} bind={bind} refused sessiond's ticket: {r:?}"
        );
        assert_eq!(r.header("x-remote-user"), Some("alice"));
        // Apache refreshes once time has passed (its rule: less than
        // fraction × timeout left); a 100 s old ticket from the CLI.
        let mut args = vec!["--digest", digest, "--user", "alice", "--data", "d"];
        let issued = (now() - 100).to_string();
        args.extend(["--time", issued.as_str()]);
        if bind {
            args.extend(["--ip", "127.0.0.1"]);
        }
        let aged = sign_cli(&args, SECRET);
        let r = apache_get(&addr, &aged).await;
        assert_eq!(
            r.status, 200,
            "apache {digest} bind={bind} refused {aged}: {r:?}"
        );
        let refreshed = cookie_named(&r, "auth_tkt")
            .expect("apache refreshes")
            .to_owned();
        let back = auth_with(&s, &format!("auth_tkt={refreshed}")).await;
        assert_eq!(
            back.status, 200,
            "sessiond refused apache's {digest} ticket {refreshed}: {back:?}"
        );
        assert_eq!(back.header("x-remote-user"), Some("alice"));
        // Apache refuses a tampered ticket too, so the check above is real.
        let mut bad = base64_decode(&ticket);
        bad[3] ^= 1;
        let bad = base64_encode(&bad);
        let r = apache_get(&addr, &bad).await;
        assert_ne!(r.status, 200, "apache took a tampered ticket");
    }
    // A ticket bound to another address: refused by Apache and sessiond.
    let other = sign_cli(
        &["--digest", "md5", "--user", "alice", "--ip", "192.0.2.9"],
        SECRET,
    );
    let addr = format!("127.0.0.1:{}", apache.ports[3]);
    let r = apache_get(&addr, &other).await;
    assert_ne!(r.status, 200);
    let s = server("digest = \"md5\"\nbind_address = true");
    assert_eq!(
        auth_with(&s, &format!("auth_tkt={other}")).await.status,
        401
    );
}

/// Apache's protected page, with `ticket` as the auth_tkt cookie.
async fn apache_get(addr: &str, ticket: &str) -> Resp {
    common::request_to(
        addr,
        "GET",
        "/protected/index.html",
        &[("Host", addr), ("Cookie", &format!("auth_tkt={ticket}"))],
        b"",
    )
    .await
}

fn urlenc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}
