//! Constrained delegation (issue 16) against a real MIT KDC whose database
//! is in LDAP (scripts/krb5-ldap-realm.sh, started by scripts/test.sh): the
//! only kind of MIT realm that can authorise S4U2Proxy.
//!
//! The realm itself is held to what sessiond relies on, then sessiond
//! hands a back end a ticket for a password-file user who never used
//! Kerberos (protocol transition), and a second sessiond — the "back end",
//! with only the back end's keytab — accepts it from `curl --negotiate`.

#![cfg(feature = "kerberos")]

mod common;

use common::{login, Options, Server};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A back end's own credential for the credentials route.
const READER: &str = "backend-reader-credential-0123456789";

/// The S4U realm's directory, krb5.conf and user, or `None` (skip) when it
/// is not running.
struct Realm {
    dir: PathBuf,
    config: String,
    realm: String,
    user: String,
}

fn realm() -> Option<Realm> {
    match (
        std::env::var("S4U_TEST_DIR"),
        std::env::var("S4U_TEST_KRB5_CONFIG"),
        std::env::var("S4U_TEST_REALM"),
        std::env::var("S4U_TEST_USER"),
    ) {
        (Ok(dir), Ok(config), Ok(realm), Ok(user)) => Some(Realm {
            dir: dir.into(),
            config,
            realm,
            user,
        }),
        _ => common::missing(
            "the LDAP-backed test realm is not running (S4U_TEST_* unset; scripts/krb5-ldap-realm.sh)",
        ),
    }
}

impl Realm {
    /// An MIT tool run in this realm with the ccache `ccache`.
    fn run(&self, ccache: &Path, program: &str, args: &[&str]) -> Output {
        Command::new(program)
            .args(args)
            .env("KRB5_CONFIG", &self.config)
            .env("KRB5CCNAME", format!("FILE:{}", ccache.display()))
            .env_remove("KRB5_KTNAME")
            .env_remove("KRB5_CLIENT_KTNAME")
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"))
    }
}

/// The KDC gives sessiond's service (`HTTP/localhost`, its keytab) a ticket
/// for a user who never used Kerberos (S4U2Self, allowed by
/// `+ok_to_auth_as_delegate`), then, from it, a ticket for that user to
/// `HTTP/backend.localhost` (S4U2Proxy, allowed by `krbAllowedToDelegateTo`)
/// — and to no other service.
#[test]
fn the_realm_authorises_delegation_to_the_back_end_only() {
    let Some(r) = realm() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let ccache = tmp.path().join("service.ccache");
    let keytab = r.dir.join("http.keytab");
    let out = r.run(
        &ccache,
        "kinit",
        &["-k", "-t", keytab.to_str().unwrap(), "HTTP/localhost"],
    );
    assert!(out.status.success(), "kinit -k: {out:?}");

    let out = r.run(
        &ccache,
        "kvno",
        &["-U", &r.user, "-P", "HTTP/backend.localhost"],
    );
    assert!(out.status.success(), "S4U2Self + S4U2Proxy: {out:?}");
    let listed = r.run(&ccache, "klist", &[]);
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.contains(&format!("HTTP/backend.localhost@{}", r.realm))
            && listed.contains(&format!("for client {}@{}", r.user, r.realm)),
        "a ticket for the user to the back end: {listed}"
    );
    // What a plain export of this cache would hand a back end besides that
    // ticket: the service's own TGT. The server must never pass the cache
    // on as it is (issue 16, item 3).
    assert!(listed.contains(&format!("krbtgt/{}", r.realm)), "{listed}");

    let out = r.run(
        &ccache,
        "kvno",
        &["-U", &r.user, "-P", "HTTP/other.localhost"],
    );
    assert!(!out.status.success(), "a service not on the list: {out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("constrained delegation failed"), "{err}");
}

/// sessiond in the S4U realm with `[realms.rc.delegation]` (protocol
/// transition on) and `[realms.plain.delegation]` (off).
fn delegating_server(r: &Realm) -> Server {
    let config = r
        .dir
        .join(format!("delegating-{}.toml", std::process::id()));
    std::fs::write(
        &config,
        format!(
            r#"[kerberos]
keytab = "{keytab}"
[realms.rc.delegation]
targets = ["HTTP/backend.localhost@{realm}"]
protocol_transition = true
user_principal = "{{user}}@{realm}"
[realms.plain.delegation]
targets = ["HTTP/backend.localhost@{realm}"]
"#,
            keytab = r.dir.join("http.keytab").display(),
            realm = r.realm,
        ),
    )
    .unwrap();
    Server::start(
        Options::default()
            .user(&r.user, "alice-file-pw")
            .user("nobody-in-kerberos", "nobody-pw")
            .env("KRB5_CONFIG", &r.config)
            .env("SESSIOND_CREDENTIAL_READERS", READER)
            .env("SESSIOND_KERBEROS__NEGOTIATE", "true")
            .args(&["-c", config.to_str().unwrap()]),
    )
}

/// `ccache` holds alice's ticket to the back end and nothing else: no
/// `krbtgt` (sessiond's or anyone's), no other service; `kvno` of the back
/// end works from it, of any other service fails.
fn assert_one_ticket_to_the_back_end(r: &Realm, ccache: &Path) {
    let listed = r.run(ccache, "klist", &[]);
    assert!(listed.status.success(), "{listed:?}");
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.contains(&format!("Default principal: {}@{}", r.user, r.realm)),
        "{listed}"
    );
    assert!(
        listed.contains(&format!("HTTP/backend.localhost@{}", r.realm)),
        "{listed}"
    );
    assert!(!listed.contains("krbtgt"), "a TGT leaked: {listed}");
    assert_eq!(
        listed.matches('@').count(),
        2,
        "one principal, one ticket: {listed}"
    );
    let out = r.run(ccache, "kvno", &["HTTP/backend.localhost"]);
    assert!(out.status.success(), "{out:?}");
    let out = r.run(ccache, "kvno", &["HTTP/other.localhost"]);
    assert!(!out.status.success(), "another service: {out:?}");
}

/// The back end: a sessiond with only the back end's key, reached by
/// `curl --negotiate` with `ccache`; the user it saw.
fn backend_sees(r: &Realm, ccache: &Path) -> String {
    let backend = Server::start(
        Options::default()
            .env("KRB5_CONFIG", &r.config)
            .env("SESSIOND_KERBEROS__NEGOTIATE", "true")
            .env(
                "SESSIOND_KERBEROS__KEYTAB",
                r.dir.join("backend.keytab").to_str().unwrap(),
            ),
    );
    let port = backend.addr.rsplit(':').next().unwrap();
    let out = Command::new("curl")
        .args(["-s", "--negotiate", "-u", ":"])
        .arg(format!(
            "http://backend.localhost:{port}/auth_token?realm=rc"
        ))
        .env("KRB5_CONFIG", &r.config)
        .env("KRB5CCNAME", format!("FILE:{}", ccache.display()))
        .output()
        .unwrap();
    let body = String::from_utf8_lossy(&out.stdout).into_owned();
    body.lines()
        .nth(1)
        .unwrap_or_else(|| panic!("the back end answered: {body:?}"))
        .to_owned()
}

async fn fetch(s: &Server, realm: &str, token: &str, target: Option<&str>) -> common::Resp {
    let query = match target {
        Some(t) => format!("realm={realm}&target={t}"),
        None => format!("realm={realm}"),
    };
    common::fetch_credentials(s, &query, token, READER).await
}

/// A password-file login, protocol transition on: the back end gets a
/// cache that reaches `HTTP/backend.localhost` as alice and nothing else —
/// no `krbtgt`, no other service; a target off the list is 403 before the
/// KDC is asked; without protocol transition, 404 `no_credentials`; a
/// revoked session, 401.
#[tokio::test]
async fn protocol_transition_for_a_password_login() {
    let Some(r) = realm() else {
        return;
    };
    let s = delegating_server(&r);
    let token = login(&s, "rc", &r.user, "alice-file-pw").await;

    let got = fetch(&s, "rc", &token, Some("HTTP/backend.localhost")).await;
    assert_eq!(got.status, 200, "{got:?}");
    assert_eq!(got.header("content-type"), Some("application/octet-stream"));
    let tmp = tempfile::tempdir().unwrap();
    let ccache = tmp.path().join("alice-to-backend.ccache");
    std::fs::write(&ccache, &got.body).unwrap();
    assert_one_ticket_to_the_back_end(&r, &ccache);
    // kept until shortly before it ends: the next fetch asks no KDC (a new
    // S4U exchange would bring a new ticket and session key)
    let again = fetch(&s, "rc", &token, Some("HTTP/backend.localhost")).await;
    assert_eq!(again.status, 200, "{again:?}");
    assert_eq!(again.body, got.body, "served from the kept ticket");
    assert_eq!(backend_sees(&r, &ccache), r.user);

    // a user the KDC does not know: the KDC refuses
    let unknown = login(&s, "rc", "nobody-in-kerberos", "nobody-pw").await;
    let r2 = fetch(&s, "rc", &unknown, Some("HTTP/backend.localhost")).await;
    assert_eq!(r2.status, 403, "{r2:?}");
    assert_eq!(r2.json()["error"], "delegation_refused", "{r2:?}");

    // a service not on the realm's list: refused before the KDC is asked
    let refused = fetch(&s, "rc", &token, Some("HTTP/other.localhost")).await;
    assert_eq!(refused.status, 403, "{refused:?}");
    assert_eq!(refused.json()["error"], "target_not_allowed", "{refused:?}");
    // the session itself keeps no credentials (a password login)
    let none = fetch(&s, "rc", &token, None).await;
    assert_eq!(none.status, 404, "{none:?}");

    // protocol transition off: nothing to obtain the ticket from
    let plain = login(&s, "plain", &r.user, "alice-file-pw").await;
    let off = fetch(&s, "plain", &plain, Some("HTTP/backend.localhost")).await;
    assert_eq!(off.status, 404, "{off:?}");
    assert_eq!(off.json()["error"], "no_credentials", "{off:?}");

    // a revoked session gets nothing
    s.get(&format!("/revoke?realm=rc&token={token}"))
        .await
        .assert_text(200, "OK\n");
    let gone = fetch(&s, "rc", &token, Some("HTTP/backend.localhost")).await;
    assert_eq!(gone.status, 401, "{gone:?}");
}

/// A Negotiate login that forwarded nothing, in a realm without protocol
/// transition: sessiond's acceptor credential also initiates, so the
/// login's own ticket is S4U2Proxy evidence, and the back end gets a cache
/// reaching `HTTP/backend.localhost` as alice and nothing else. The tickets
/// the session keeps are never handed out whole; a revoked session gets
/// nothing.
#[tokio::test]
async fn s4u2proxy_after_a_negotiate_login() {
    let Some(r) = realm() else {
        return;
    };
    let password = std::env::var("S4U_TEST_PASSWORD").unwrap();
    let s = delegating_server(&r);
    let tmp = tempfile::tempdir().unwrap();
    let user_ccache = tmp.path().join("alice.ccache");
    let mut kinit = Command::new("kinit")
        .arg(&r.user)
        .env("KRB5_CONFIG", &r.config)
        .env("KRB5CCNAME", format!("FILE:{}", user_ccache.display()))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write;
    writeln!(kinit.stdin.take().unwrap(), "{password}").unwrap();
    assert!(kinit.wait().unwrap().success(), "kinit");

    // curl --negotiate without --delegation: no TGT leaves the client
    let port = s.addr.rsplit(':').next().unwrap();
    let out = Command::new("curl")
        .args([
            "-s",
            "--negotiate",
            "-u",
            ":",
            "-H",
            "Content-Type: application/json",
        ])
        .args(["-d", r#"{"realm":"plain"}"#])
        .arg(format!("http://localhost:{port}/v1/login"))
        .env("KRB5_CONFIG", &r.config)
        .env("KRB5CCNAME", format!("FILE:{}", user_ccache.display()))
        .output()
        .unwrap();
    let body = String::from_utf8_lossy(&out.stdout);
    let login: serde_json::Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(login["user"], r.user.as_str(), "{body}");
    let token = login["token"].as_str().unwrap().to_owned();

    let got = fetch(&s, "plain", &token, Some("HTTP/backend.localhost")).await;
    assert_eq!(got.status, 200, "{got:?}");
    let ccache = tmp.path().join("alice-to-backend.ccache");
    std::fs::write(&ccache, &got.body).unwrap();
    assert_one_ticket_to_the_back_end(&r, &ccache);
    assert_eq!(backend_sees(&r, &ccache), r.user);

    // what the session keeps is not a TGT: never handed out whole
    let whole = fetch(&s, "plain", &token, None).await;
    assert_eq!(whole.status, 404, "{whole:?}");
    assert_eq!(whole.json()["error"], "no_credentials", "{whole:?}");
    let refused = fetch(&s, "plain", &token, Some("HTTP/other.localhost")).await;
    assert_eq!(refused.status, 403, "{refused:?}");

    s.get(&format!("/revoke?realm=plain&token={token}"))
        .await
        .assert_text(200, "OK\n");
    let gone = fetch(&s, "plain", &token, Some("HTTP/backend.localhost")).await;
    assert_eq!(gone.status, 401, "{gone:?}");
}
