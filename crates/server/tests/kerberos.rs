//! Kerberos against a real MIT KDC (scripts/krb5-realm.sh, started by
//! scripts/test.sh): password logins through the `krb5` module with their
//! distinct failures, and Negotiate with real `kinit` + `curl --negotiate`
//! on the token API, browser login and forward auth.

#![cfg(feature = "kerberos")]

mod common;

use common::{kinit, Options, Server};
use std::process::Command;

/// The test realm's environment, or `None` (skip) when it is not running.
fn realm() -> Option<(String, String)> {
    match (
        std::env::var("KRB_TEST_USER"),
        std::env::var("KRB_TEST_PASSWORD"),
    ) {
        (Ok(u), Ok(p)) => Some((u, p)),
        _ => common::missing(
            "the test Kerberos realm is not running (KRB_TEST_* unset; scripts/krb5-realm.sh)",
        ),
    }
}

fn kerberos_server(extra: &[(&str, &str)]) -> Server {
    let mut o = Options::default()
        .user("bob", "bob-pw")
        .env("SESSIOND_AUTH__MODULES", r#"["file", "krb5"]"#)
        .env("SESSIOND_KERBEROS__NEGOTIATE", "true")
        .env(
            "SESSIOND_KERBEROS__KEYTAB",
            &format!(
                "{}/http.keytab",
                std::env::var("KRB_TEST_DIR").unwrap_or_default()
            ),
        )
        .env("SESSIOND_BROWSER__COOKIE__SECURE", "false");
    for (k, v) in extra {
        o = o.env(k, v);
    }
    Server::start(o)
}

/// The server's URL with `localhost`: curl asks for a ticket for HTTP@<host>.
fn url(s: &Server, path: &str) -> String {
    let port = s.addr.rsplit(':').next().unwrap();
    format!("http://localhost:{port}{path}")
}

/// `curl --negotiate`, returning (status, headers, body).
fn curl(ccache: &str, args: &[&str]) -> (u16, String, String) {
    let out = Command::new("curl")
        .args(["-s", "--negotiate", "-u", ":", "-D", "-", "-o", "-"])
        .args(args)
        .env("KRB5CCNAME", ccache)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    // the last response (curl shows the 401 and the retry)
    let last = text.rfind("HTTP/1.1 ").unwrap_or(0);
    let response = &text[last..];
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((response, ""));
    let status = head[9..12].parse().unwrap_or(0);
    (status, head.to_owned(), body.to_owned())
}

#[tokio::test]
async fn krb5_password_logins_and_their_failures() {
    let Some((user, password)) = realm() else {
        return;
    };
    let s = kerberos_server(&[]);
    let login = |u: &str, p: &str| serde_json::json!({"realm": "rc", "user": u, "password": p, "module": "krb5"});
    let r = s.post_json("/v1/login", login(&user, &password)).await;
    assert_eq!(r.status, 200, "{r:?}");
    let j = r.json();
    assert_eq!(
        (j["user"].as_str(), j["source"].as_str()),
        (Some("alice"), Some("auth/krb5"))
    );
    // capped by the TGT's end (10 h in the test realm) minus the 5 min skew
    let lifetime =
        j["expires_at"].as_i64().expect("capped by the ticket") - j["created"].as_i64().unwrap();
    assert!(
        (10 * 3600 - 5 * 60 - 60..=10 * 3600 - 5 * 60).contains(&lifetime),
        "{j}"
    );
    let token = j["token"].as_str().unwrap().to_owned();
    s.get(&format!("/valid?realm=rc&token={token}"))
        .await
        .assert_text(200, "YES\nalice\nauth/krb5\n\n");

    for (u, p, status, code) in [
        (user.as_str(), "not-the-password", 401, "wrong_password"),
        ("nobody-here", "whatever", 401, "unknown_user"),
        ("expired", "expired-Pass-1", 403, "password_expired"),
    ] {
        let r = s.post_json("/v1/login", login(u, p)).await;
        assert_eq!(
            (r.status, r.json()["error"].as_str()),
            (status, Some(code)),
            "{u}: {r:?}"
        );
    }
    // the text protocol keeps the original's single answer
    s.get("/auth_token?realm=rc&user=alice&pwd=wrong&module=krb5")
        .await
        .assert_bare(403);
}

#[tokio::test]
async fn unreachable_kdc_is_503() {
    let Some((user, password)) = realm() else {
        return;
    };
    // the same realm, but a KDC address where nothing listens
    let conf = std::fs::read_to_string(std::env::var("KRB5_CONFIG").unwrap()).unwrap();
    let port = std::env::var("KRB_TEST_KDC_PORT").unwrap();
    let dead = common::free_port();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("krb5.conf");
    std::fs::write(
        &path,
        conf.replace(&format!("127.0.0.1:{port}"), &format!("127.0.0.1:{dead}")),
    )
    .unwrap();
    let s = kerberos_server(&[("KRB5_CONFIG", path.to_str().unwrap())]);
    let r = s
        .post_json(
            "/v1/login",
            serde_json::json!({"realm": "rc", "user": user, "password": password, "module": "krb5"}),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (503, Some("auth_unavailable")),
        "{r:?}"
    );
}

#[tokio::test]
async fn negotiate_with_kinit_and_curl() {
    let Some((user, password)) = realm() else {
        return;
    };
    let s = kerberos_server(&[]);
    let dir = tempfile::tempdir().unwrap();
    let ccache = kinit(dir.path(), &user, &password);

    // The first leg, without a ticket: the text protocol's own 401 line,
    // the challenge, and the machine code.
    let first = s.get("/auth_token?realm=rc").await;
    first.assert_text(401, "ERR: send pwd, or a Kerberos ticket (Negotiate)\n");
    assert_eq!(first.header("www-authenticate"), Some("Negotiate"));
    assert_eq!(first.header("x-sessiond-reason"), Some("negotiate"));

    // token API: curl's first try gets the challenge, its retry a token
    let (status, head, body) = curl(&ccache, &[&url(&s, "/auth_token?realm=rc")]);
    assert_eq!(status, 200, "{head}{body}");
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(&lines[1..], ["alice", "negotiate"], "{body:?}");
    assert!(
        head.to_ascii_lowercase()
            .contains("www-authenticate: negotiate "),
        "mutual authentication reply: {head}"
    );
    s.get(&format!("/valid?realm=rc&token={}", lines[0]))
        .await
        .assert_text(200, "YES\nalice\nnegotiate\n\n");

    // JSON API
    let (status, _, body) = curl(
        &ccache,
        &[
            "-H",
            "Content-Type: application/json",
            "-d",
            r#"{"realm":"rc"}"#,
            &url(&s, "/v1/login"),
        ],
    );
    assert_eq!(status, 200, "{body}");
    let j: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (j["user"].as_str(), j["source"].as_str()),
        (Some("alice"), Some("negotiate"))
    );

    // browser login: a session cookie, then cheap cookie checks
    let (status, head, _) = curl(&ccache, &[&url(&s, "/session/login_kerberos?next=%2Fapp")]);
    assert_eq!(status, 303, "{head}");
    assert!(
        head.contains("location: /app") || head.contains("Location: /app"),
        "{head}"
    );
    let cookie = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .starts_with("set-cookie:")
                .then(|| l[11..].trim().to_owned())
        })
        .expect("a session cookie");
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let who = s
        .request("GET", "/session/whoami", &[("Cookie", &cookie)], b"")
        .await;
    assert_eq!(
        (who.status, who.json()["user"].as_str()),
        (200, Some("alice")),
        "{who:?}"
    );

    // forward auth: no cookie but a ticket → let in, with a cookie for next time
    let (status, head, _) = curl(&ccache, &[&url(&s, "/auth")]);
    assert_eq!(status, 200, "{head}");
    let lower = head.to_ascii_lowercase();
    assert!(lower.contains("x-remote-user: alice"), "{head}");
    assert!(lower.contains("set-cookie: sessiond="), "{head}");

    // without a ticket: 401 with the challenge
    let r = s.get("/auth").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), Some("Negotiate"));
    let r = s.get("/session/login_kerberos").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), Some("Negotiate"));
    // a garbage token is refused, not a 500
    let r = s
        .request("GET", "/auth", &[("Authorization", "Negotiate AAAA")], b"")
        .await;
    assert_eq!(r.status, 401, "{r:?}");
}

/// With `kerberos.auth_sets_cookie = false`, forward auth answers a ticket
/// with the identity and stores nothing.
#[tokio::test]
async fn forward_auth_by_ticket_without_a_session() {
    let Some((user, password)) = realm() else {
        return;
    };
    let s = kerberos_server(&[("SESSIOND_KERBEROS__AUTH_SETS_COOKIE", "false")]);
    let dir = tempfile::tempdir().unwrap();
    let ccache = kinit(dir.path(), &user, &password);
    let (status, head, _) = curl(&ccache, &[&url(&s, "/auth")]);
    assert_eq!(status, 200, "{head}");
    let lower = head.to_ascii_lowercase();
    assert!(lower.contains("x-remote-user: alice"), "{head}");
    assert!(lower.contains("x-auth-source: negotiate"), "{head}");
    assert!(!lower.contains("set-cookie"), "{head}");
}

const READER: &str = "backend-credential-0123456789";

async fn fetch_credentials(s: &Server, token: &str, reader: &str) -> common::Resp {
    common::fetch_credentials(s, "realm=rc", token, reader).await
}

/// Delegated credentials and krb5 TGTs are kept sealed in the session (the
/// store file never holds them in clear), fetched by an authorised back end
/// as a working ccache, and gone with the session.
#[tokio::test]
async fn credentials_are_sealed_fetchable_and_usable() {
    let Some((user, password)) = realm() else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let s = kerberos_server(&[
        ("SESSIOND_CREDENTIAL_READERS", READER),
        (
            "SESSIOND_CREDENTIAL_KEYS",
            "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
        ),
        ("SESSIOND_STORE__KIND", "file"),
        ("SESSIOND_STORE__PATH", data.path().to_str().unwrap()),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let ccache = kinit(dir.path(), &user, &password);

    // a delegated ticket
    let (status, _, body) = curl(
        &ccache,
        &[
            "--delegation",
            "always",
            "-H",
            "Content-Type: application/json",
            "-d",
            r#"{"realm":"rc"}"#,
            &url(&s, "/v1/login"),
        ],
    );
    assert_eq!(status, 200, "{body}");
    let token = serde_json::from_str::<serde_json::Value>(&body).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let db = std::fs::read(data.path().join("sessions.redb")).unwrap();
    assert!(
        !db.windows(6).any(|w| w == b"krbtgt"),
        "the store holds the ccache in clear"
    );

    let r = fetch_credentials(&s, &token, READER).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    let fetched = dir.path().join("fetched");
    std::fs::write(&fetched, &r.body).unwrap();
    let fetched_cc = format!("FILE:{}", fetched.display());
    let klist = Command::new("klist")
        .arg("-c")
        .arg(&fetched_cc)
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&klist.stdout);
    assert!(listed.contains("alice@EXAMPLE.TEST"), "{listed}");
    assert!(
        listed.contains("krbtgt/EXAMPLE.TEST@EXAMPLE.TEST"),
        "{listed}"
    );
    // and it works: a service ticket, as the user, from the fetched TGT
    let kvno = Command::new("kvno")
        .arg("HTTP/localhost")
        .env("KRB5CCNAME", &fetched_cc)
        .output()
        .unwrap();
    assert!(
        kvno.status.success(),
        "{}",
        String::from_utf8_lossy(&kvno.stderr)
    );

    // only authorised back ends, only with a live session
    let r = fetch_credentials(&s, &token, "some-other-credential-xyz").await;
    assert_eq!(r.status, 403, "{r:?}");
    s.get(&format!("/revoke?realm=rc&token={token}"))
        .await
        .assert_text(200, "OK\n");
    let r = fetch_credentials(&s, &token, READER).await;
    assert_eq!(r.status, 401, "gone with the session: {r:?}");

    // no delegation: nothing to fetch
    let (_, _, body) = curl(
        &ccache,
        &[
            "-H",
            "Content-Type: application/json",
            "-d",
            r#"{"realm":"rc"}"#,
            &url(&s, "/v1/login"),
        ],
    );
    let plain = serde_json::from_str::<serde_json::Value>(&body).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = fetch_credentials(&s, &plain, READER).await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (404, Some("no_credentials"))
    );

    // a krb5 password login keeps its TGT
    let r = s
        .post_json(
            "/v1/login",
            serde_json::json!({"realm": "rc", "user": user, "password": password, "module": "krb5"}),
        )
        .await;
    let tgt_session = r.json()["token"].as_str().unwrap().to_owned();
    let r = fetch_credentials(&s, &tgt_session, READER).await;
    assert_eq!(r.status, 200, "{r:?}");

    // without readers configured the route does not exist
    let plain_server = kerberos_server(&[]);
    let r = fetch_credentials(&plain_server, &tgt_session, READER).await;
    assert_eq!(r.status, 404);
}

/// Per realm: one realm keeps the Kerberos realm in user names, another does
/// not offer Negotiate at all.
#[tokio::test]
async fn negotiate_and_principal_mapping_per_realm() {
    let Some((user, password)) = realm() else {
        return;
    };
    let s = kerberos_server(&[
        ("SESSIOND_REALMS__FULL__PRINCIPAL_MAPPING", "keep"),
        ("SESSIOND_REALMS__CLOSED__NEGOTIATE", "false"),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let ccache = kinit(dir.path(), &user, &password);
    let (status, _, body) = curl(&ccache, &[&url(&s, "/auth_token?realm=full")]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body.lines().nth(1), Some("alice@EXAMPLE.TEST"), "{body:?}");
    let r = s
        .post_json(
            "/v1/login",
            serde_json::json!({"realm": "full", "user": user, "password": password, "module": "krb5"}),
        )
        .await;
    assert_eq!(r.json()["user"], "alice@EXAMPLE.TEST", "{r:?}");

    let r = s.get("/auth?realm=closed").await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        None,
        "no Negotiate offered: {r:?}"
    );
    let (status, _, _) = curl(&ccache, &[&url(&s, "/auth_token?realm=closed")]);
    assert_eq!(status, 400, "closed realm: password only");
}

/// A real two-leg exchange (MIT Kerberos in DCE style: the acceptor needs a
/// second token): the first answer is 401 with the server's token, and the
/// client's next token on the same connection completes the login. On
/// another connection the second token means nothing.
#[tokio::test]
async fn multi_leg_negotiate_continues_on_its_connection() {
    use base64::Engine;
    use sessiond_auth::kerberos::libgssapi::context::{ClientCtx, CtxFlags};
    use sessiond_auth::kerberos::libgssapi::credential::{Cred, CredUsage};
    use sessiond_auth::kerberos::libgssapi::name::Name;
    use sessiond_auth::kerberos::libgssapi::oid::{
        GSS_MECH_KRB5, GSS_NT_HOSTBASED_SERVICE, GSS_NT_KRB5_PRINCIPAL,
    };
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Some((user, password)) = realm() else {
        return;
    };
    let s = kerberos_server(&[]);
    let b64 = base64::engine::general_purpose::STANDARD;

    let name = Name::new(user.as_bytes(), Some(GSS_NT_KRB5_PRINCIPAL)).unwrap();
    let cred = Cred::acquire_with_password(Some(&name), &password, None, CredUsage::Initiate, None)
        .unwrap();
    let target = Name::new(b"HTTP@localhost", Some(GSS_NT_HOSTBASED_SERVICE)).unwrap();
    const DCE_STYLE: u32 = 0x1000;
    let flags = CtxFlags::from_bits_retain(CtxFlags::GSS_C_MUTUAL_FLAG.bits() | DCE_STYLE);
    let mut client = ClientCtx::new(Some(cred), target, flags, Some(GSS_MECH_KRB5));
    let first = client.step(None, None).unwrap().unwrap();

    async fn roundtrip(conn: &mut tokio::net::TcpStream, token: &str) -> (u16, String, String) {
        let req = format!(
            "GET /auth_token?realm=rc HTTP/1.1\r\nHost: localhost\r\nAuthorization: Negotiate {token}\r\n\r\n"
        );
        conn.write_all(req.as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            let n = conn.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed");
            buf.extend_from_slice(&chunk[..n]);
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let length: usize = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse().unwrap())
            })
            .unwrap_or(0);
        while buf.len() < head_end + length {
            let n = conn.read(&mut chunk).await.unwrap();
            buf.extend_from_slice(&chunk[..n]);
        }
        let body = String::from_utf8_lossy(&buf[head_end..head_end + length]).into_owned();
        (head[9..12].parse().unwrap(), head, body)
    }

    let mut conn = tokio::net::TcpStream::connect(&s.addr).await.unwrap();
    let (status, head, _) = roundtrip(&mut conn, &b64.encode(&*first)).await;
    assert_eq!(status, 401, "{head}");
    let challenge = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .starts_with("www-authenticate: negotiate ")
                .then(|| l[28..].trim().to_owned())
        })
        .expect("the server's token");
    let second = client
        .step(Some(&b64.decode(challenge).unwrap()), None)
        .unwrap()
        .expect("the client's second token");

    // on another connection the second token is not an exchange
    let mut other = tokio::net::TcpStream::connect(&s.addr).await.unwrap();
    let (status, _, _) = roundtrip(&mut other, &b64.encode(&*second)).await;
    assert_eq!(status, 403, "a stray second leg is refused");

    let (status, head, body) = roundtrip(&mut conn, &b64.encode(&*second)).await;
    assert_eq!(status, 200, "{head}{body}");
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(&lines[1..], ["alice", "negotiate"], "{body:?}");
}

/// `strip-realm` strips only local realms: a principal of any other realm
/// (a trusted cross-realm one) keeps its realm, so it can never pass for
/// the local user of the same name. Shown by declaring the test realm
/// foreign; by default the local realm is krb5.conf's default_realm.
#[tokio::test]
async fn strip_realm_strips_only_local_realms() {
    let Some((user, password)) = realm() else {
        return;
    };
    let login = |u: &str, p: &str| serde_json::json!({"realm": "rc", "user": u, "password": p, "module": "krb5"});
    let s = kerberos_server(&[("SESSIOND_KERBEROS__LOCAL_REALMS", "[\"OTHER.TEST\"]")]);
    let r = s.post_json("/v1/login", login(&user, &password)).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["user"], "alice@EXAMPLE.TEST", "{r:?}");
    let dir = tempfile::tempdir().unwrap();
    let ccache = kinit(dir.path(), &user, &password);
    let (status, _, body) = curl(&ccache, &[&url(&s, "/auth_token?realm=rc")]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body.lines().nth(1), Some("alice@EXAMPLE.TEST"), "{body:?}");
}

/// Kerberos names no groups: a Kerberos login (the `krb5` password module
/// or Negotiate) gets them from `[kerberos.groups]`, or from LDAP with
/// `kerberos.groups_from = "ldap"` (the service account finds the user's
/// entry, then its groups).
#[tokio::test]
async fn kerberos_logins_get_groups_from_the_table_or_ldap() {
    let Some((user, password)) = realm() else {
        return;
    };
    let negotiate_groups = |s: &Server| {
        let dir = tempfile::tempdir().unwrap();
        let ccache = kinit(dir.path(), &user, &password);
        let (status, _, body) = curl(
            &ccache,
            &[
                "-H",
                "Content-Type: application/json",
                "-d",
                r#"{"realm":"rc"}"#,
                &url(s, "/v1/login"),
            ],
        );
        assert_eq!(status, 200, "{body}");
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["groups"].clone()
    };
    let s = kerberos_server(&[(
        "SESSIOND_KERBEROS__GROUPS__alice",
        r#"["ops", "kdc-users"]"#,
    )]);
    let r = s
        .post_json(
            "/v1/login",
            serde_json::json!({"realm": "rc", "user": user, "password": password, "module": "krb5"}),
        )
        .await;
    assert_eq!(
        r.json()["groups"],
        serde_json::json!(["kdc-users", "ops"]),
        "{r:?}"
    );
    assert_eq!(
        negotiate_groups(&s),
        serde_json::json!(["kdc-users", "ops"])
    );

    let (Ok(ldap_url), Ok(reader)) = (
        std::env::var("LDAP_TEST_URL"),
        std::env::var("LDAP_TEST_READER_PASSWORD"),
    ) else {
        common::missing::<()>("the test LDAP server is not running (scripts/ldap-server.sh)");
        return;
    };
    let s = kerberos_server(&[
        ("SESSIOND_KERBEROS__GROUPS_FROM", "ldap"),
        ("SESSIOND_LDAP__URL", &ldap_url),
        ("SESSIOND_LDAP__BIND_DN", "cn=reader,dc=example,dc=test"),
        ("SESSIOND_LDAP_BIND_PASSWORD", &reader),
        ("SESSIOND_LDAP__SEARCH_BASE", "ou=people,dc=example,dc=test"),
        (
            "SESSIOND_LDAP__GROUP_SEARCH_BASE",
            "ou=groups,dc=example,dc=test",
        ),
        ("SESSIOND_LDAP__NESTED_GROUPS", "true"),
    ]);
    assert_eq!(
        negotiate_groups(&s),
        serde_json::json!(["dev", "engineering"])
    );
    // LDAP unreachable: the login still works, without groups (which can
    // only narrow what rules admit), and the failure is logged
    let s = kerberos_server(&[
        ("SESSIOND_KERBEROS__GROUPS_FROM", "ldap"),
        ("SESSIOND_LDAP__URL", "ldap://127.0.0.1:9"),
        ("SESSIOND_LDAP__BIND_DN", "cn=reader,dc=example,dc=test"),
        ("SESSIOND_LDAP_BIND_PASSWORD", &reader),
        ("SESSIOND_LDAP__SEARCH_BASE", "ou=people,dc=example,dc=test"),
        ("SESSIOND_LDAP__GROUP_ATTRIBUTE", "memberOf"),
    ]);
    assert_eq!(negotiate_groups(&s), serde_json::json!([]));
    assert!(
        s.stderr()
            .contains("cannot read the groups of a Kerberos user"),
        "{}",
        s.stderr()
    );
}
