//! Reload on SIGHUP against the real binary: ticket secrets, the admin
//! credential, access rules and the TLS certificate change under continuous
//! traffic without one failed request; a broken configuration is refused
//! whole and the running one keeps serving.

mod common;

use common::{Options, Server};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const S1: &str = "first-ticket-secret-0123456789abcdef";
const S2: &str = "second-ticket-secret-0123456789abcdef";

fn hup(s: &Server) {
    assert!(std::process::Command::new("kill")
        .args(["-HUP", &s.child.id().to_string()])
        .status()
        .unwrap()
        .success());
}

/// Waits until `check` holds (a reload is asynchronous to the signal).
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Requests sent over and over until stopped, counting those that failed.
struct Traffic {
    stop: Arc<AtomicBool>,
    done: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Traffic {
    /// `one` makes one round of requests and says whether all went well.
    fn start<F, Fut>(one: F) -> Traffic
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = bool> + Send,
    {
        let stop = Arc::new(AtomicBool::new(false));
        let (done, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let task = {
            let (stop, done, failed) = (stop.clone(), done.clone(), failed.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let ok = one().await;
                    done.fetch_add(1, Ordering::Relaxed);
                    if !ok {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        };
        Traffic {
            stop,
            done,
            failed,
            task,
        }
    }

    /// Stops; (rounds, failed rounds).
    async fn stop(self) -> (usize, usize) {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap();
        (
            self.done.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

fn write_config(dir: &Path, extra: &str) -> std::path::PathBuf {
    let cfg = dir.join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server]\nadmin_token_file = {:?}\n[browser.cookie]\nsecure = false\n\
             [realms.tk.ticket]\nsecrets_file = {:?}\ncookie_secure = false\n{extra}",
            dir.join("admin"),
            dir.join("secrets")
        ),
    )
    .unwrap();
    cfg
}

async fn admin_status(s: &Server, credential: &str) -> u16 {
    s.request(
        "GET",
        "/v1/users/rc/alice/sessions",
        &[("Authorization", &format!("Bearer {credential}"))],
        b"",
    )
    .await
    .status
}

async fn ticket_login(s: &Server) -> String {
    let r = s
        .post_json(
            "/v1/login",
            serde_json::json!({"realm": "tk", "user": "alice", "password": "alice-pw"}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    r.json()["ticket"].as_str().expect("a ticket").to_owned()
}

async fn ticket_valid(s: &Server, ticket: &str) -> bool {
    let r = s
        .post_json(
            "/v1/validate",
            serde_json::json!({"realm": "tk", "token": ticket}),
        )
        .await;
    r.status == 200 && r.json()["status"] == "valid"
}

/// Which of the secrets signed `ticket`, per `sessiond ticket verify` with
/// a configuration that lists only that one.
fn signed_with(dir: &Path, ticket: &str, secret: &str) -> bool {
    let only = dir.join("only");
    std::fs::create_dir_all(&only).unwrap();
    std::fs::write(only.join("secrets"), format!("{secret}\n")).unwrap();
    std::fs::write(only.join("admin"), "x".repeat(32)).unwrap();
    let cfg = write_config(&only, "");
    std::process::Command::new(common::BIN)
        .args(["ticket", "verify", "--realm", "tk", "-c"])
        .arg(&cfg)
        .arg(ticket)
        .output()
        .unwrap()
        .status
        .success()
}

#[tokio::test]
async fn ticket_secrets_and_the_admin_credential_rotate_under_traffic() {
    let dir = tempfile::tempdir().unwrap().keep();
    std::fs::write(dir.join("secrets"), format!("{S1}\n")).unwrap();
    std::fs::write(dir.join("admin"), "admin-credential-one-0123456789").unwrap();
    let cfg = write_config(&dir, "");
    let s = Arc::new(Server::start(Options {
        dir: Some(dir.clone()),
        ..Options::default()
            .user("alice", "alice-pw")
            .args(&["-c", cfg.to_str().unwrap()])
    }));
    let t1 = ticket_login(&s).await;
    assert!(ticket_valid(&s, &t1).await);
    assert!(signed_with(&dir, &t1, S1));

    // continuous traffic: the old ticket and a health check, until told to stop
    let traffic = {
        let (s, t1) = (s.clone(), t1.clone());
        Traffic::start(move || {
            let (s, t1) = (s.clone(), t1.clone());
            async move { ticket_valid(&s, &t1).await && s.get("/healthz").await.status == 200 }
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;

    // a new secret first, the old one still listed; a new admin credential
    std::fs::write(dir.join("secrets"), format!("{S2}\n{S1}\n")).unwrap();
    std::fs::write(dir.join("admin"), "admin-credential-two-0123456789").unwrap();
    hup(&s);
    eventually("the new admin credential works", || async {
        admin_status(&s, "admin-credential-two-0123456789").await == 200
    })
    .await;
    assert_eq!(
        admin_status(&s, "admin-credential-one-0123456789").await,
        403
    );
    // new tickets are signed with the new secret; the old ticket still verifies
    let t2 = ticket_login(&s).await;
    assert!(
        signed_with(&dir, &t2, S2),
        "signed with the first listed secret"
    );
    assert!(!signed_with(&dir, &t2, S1));
    assert!(
        ticket_valid(&s, &t1).await,
        "old tickets verify while their secret is listed"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (done, failed) = traffic.stop().await;
    eprintln!("reload under traffic: {done} requests, {failed} failed");
    assert_eq!(failed, 0, "not one failed request");
    assert!(done > 10, "traffic ran through the reload");

    // the old secret retired: its tickets stop working, the new ones do not
    std::fs::write(dir.join("secrets"), format!("{S2}\n")).unwrap();
    hup(&s);
    eventually("the old secret is retired", || async {
        !ticket_valid(&s, &t1).await
    })
    .await;
    assert!(ticket_valid(&s, &t2).await);
    let metrics = s.get("/metrics").await.text();
    assert!(
        metrics.contains("sessiond_config_reloads_total{result=\"ok\"} 2"),
        "{metrics}"
    );
    assert!(metrics.contains("sessiond_config_last_reload_success_timestamp_seconds"));
}

#[tokio::test]
async fn a_broken_configuration_is_refused_whole() {
    let dir = tempfile::tempdir().unwrap().keep();
    std::fs::write(dir.join("secrets"), format!("{S1}\n")).unwrap();
    std::fs::write(dir.join("admin"), "admin-credential-one-0123456789").unwrap();
    let cfg = write_config(&dir, "");
    let s = Server::start(Options {
        dir: Some(dir.clone()),
        ..Options::default()
            .user("alice", "alice-pw")
            .env("SESSIOND_BROWSER__COOKIE__SECURE", "false")
            .args(&["-c", cfg.to_str().unwrap()])
    });
    // a new admin credential, and an access rule that cannot compile
    std::fs::write(dir.join("admin"), "admin-credential-two-0123456789").unwrap();
    write_config(
        &dir,
        "[[access.rules]]\npath_regex = \"(\"\npolicy = \"public\"\n",
    );
    hup(&s);
    eventually("the refusal is logged", || async {
        s.stderr().contains("reload refused")
    })
    .await;
    let log = s.stderr();
    assert!(
        log.contains("access.rules[0].path_regex"),
        "the reason: {log}"
    );
    // nothing of it took effect, not even the part that was fine
    assert_eq!(
        admin_status(&s, "admin-credential-one-0123456789").await,
        200
    );
    assert_eq!(
        admin_status(&s, "admin-credential-two-0123456789").await,
        403
    );
    let metrics = s.get("/metrics").await.text();
    assert!(
        metrics.contains("sessiond_config_reloads_total{result=\"refused\"} 1"),
        "{metrics}"
    );

    // fixed: the rules apply, and what needs a restart is named
    write_config(
        &dir,
        "[[access.rules]]\npaths = [\"/closed\"]\npolicy = \"deny\"\n\
         [store]\nprefix = \"elsewhere\"\n",
    );
    hup(&s);
    eventually("the new admin credential works", || async {
        admin_status(&s, "admin-credential-two-0123456789").await == 200
    })
    .await;
    let r = s
        .request(
            "GET",
            "/auth",
            &[("X-Original-URL", "http://app.test/closed")],
            b"",
        )
        .await;
    assert_eq!(r.status, 403, "the reloaded rule decides: {r:?}");
    assert!(
        s.stderr().contains("take effect only after a restart"),
        "{}",
        s.stderr()
    );
}

fn client_trusting(certs: &[&rcgen::CertifiedKey<rcgen::KeyPair>]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in certs {
        roots.add(c.cert.der().clone()).unwrap();
    }
    Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth(),
    )
}

/// Whether a TLS handshake with a client trusting only `client` succeeds.
async fn handshake(addr: &str, client: Arc<rustls::ClientConfig>) -> bool {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    tokio_rustls::TlsConnector::from(client)
        .connect(name, tcp)
        .await
        .is_ok()
}

#[tokio::test]
async fn the_tls_certificate_rotates_without_dropping_a_request() {
    let c1 = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let c2 = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let dir = tempfile::tempdir().unwrap().keep();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, c1.cert.pem()).unwrap();
    std::fs::write(&key, c1.signing_key.serialize_pem()).unwrap();
    let both = client_trusting(&[&c1, &c2]);
    let s = Arc::new(Server::start(Options {
        dir: Some(dir.clone()),
        tls: Some(both.clone()),
        ..Options::default()
            .env("SESSIOND_SERVER__TLS_CERT", cert.to_str().unwrap())
            .env("SESSIOND_SERVER__TLS_KEY", key.to_str().unwrap())
    }));
    assert!(handshake(&s.addr, client_trusting(&[&c1])).await);
    assert!(!handshake(&s.addr, client_trusting(&[&c2])).await);

    let traffic = {
        let s = s.clone();
        Traffic::start(move || {
            let s = s.clone();
            async move { s.get("/healthz").await.status == 200 }
        })
    };
    // the new pair, written the way tools do (key first, then the cert)
    std::fs::write(&key, c2.signing_key.serialize_pem()).unwrap();
    std::fs::write(&cert, c2.cert.pem()).unwrap();
    hup(&s);
    let only_c2 = client_trusting(&[&c2]);
    let addr = s.addr.clone();
    eventually("new connections get the new certificate", || {
        let (addr, client) = (addr.clone(), only_c2.clone());
        async move { handshake(&addr, client).await }
    })
    .await;
    assert!(!handshake(&s.addr, client_trusting(&[&c1])).await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (done, failed) = traffic.stop().await;
    eprintln!("reload under traffic: {done} requests, {failed} failed");
    assert_eq!(failed, 0, "not one failed request");
    assert!(done > 10);
}

/// `sessiond reload` signals the server named by `server.pid_file`, which
/// the server writes at start and removes when it stops.
#[tokio::test]
async fn sessiond_reload_signals_the_server_of_the_pid_file() {
    let dir = tempfile::tempdir().unwrap().keep();
    std::fs::write(dir.join("secrets"), format!("{S1}\n")).unwrap();
    std::fs::write(dir.join("admin"), "admin-credential-one-0123456789").unwrap();
    let pid_file = dir.join("sessiond.pid");
    let cfg = write_config(&dir, "");
    let toml = std::fs::read_to_string(&cfg).unwrap().replacen(
        "[server]\n",
        &format!("[server]\npid_file = {pid_file:?}\n"),
        1,
    );
    std::fs::write(&cfg, toml).unwrap();
    let mut s = Server::start(Options {
        dir: Some(dir.clone()),
        ..Options::default().args(&["-c", cfg.to_str().unwrap()])
    });
    assert_eq!(
        std::fs::read_to_string(&pid_file).unwrap().trim(),
        s.child.id().to_string()
    );
    std::fs::write(dir.join("admin"), "admin-credential-two-0123456789").unwrap();
    let out = std::process::Command::new(common::BIN)
        .args(["reload", "-c"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    eventually("the reload took the new credential", || async {
        admin_status(&s, "admin-credential-two-0123456789").await == 200
    })
    .await;
    // stopped: the PID file is gone, and `reload` says what is wrong
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &s.child.id().to_string()])
        .status()
        .unwrap()
        .success());
    s.child.wait().unwrap();
    assert!(!pid_file.exists());
    let out = std::process::Command::new(common::BIN)
        .args(["reload", "-c"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is sessiond running?"),
        "{out:?}"
    );
}

const KEY_A: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
const KEY_B: &str = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";
const READER: &str = "backend-credential-0123456789";

/// The status of a back end's request for the credentials of `token`.
async fn credentials_status(s: &Server, realm: &str, token: &str) -> u16 {
    s.request(
        "GET",
        &format!("/v1/sessions/credentials?realm={realm}"),
        &[
            ("Authorization", &format!("Bearer {READER}")),
            ("X-Sessiond-Token", token),
        ],
        b"",
    )
    .await
    .status
}

/// Realm policies, LDAP settings and the Kerberos credential keys change on
/// reload: new sessions get the new policy (existing ones keep theirs),
/// LDAP logins use the new directory settings, and credential keys rotate
/// the keyring's way — sealed under the old key still opens while the key
/// is listed, new credentials are sealed under the new one.
#[tokio::test]
async fn realm_policies_ldap_settings_and_credential_keys_apply_on_reload() {
    let var = |k: &str| std::env::var(k).ok();
    let (Some(ldap_url), Some(ldap_pw), Some(krb_user), Some(krb_pw), Some(krb_dir)) = (
        var("LDAP_TEST_URL"),
        var("LDAP_TEST_PASSWORD"),
        var("KRB_TEST_USER"),
        var("KRB_TEST_PASSWORD"),
        var("KRB_TEST_DIR"),
    ) else {
        common::missing::<()>("the test LDAP server and Kerberos realm (scripts/services.sh)");
        return;
    };
    let dir = tempfile::tempdir().unwrap().keep();
    std::fs::write(dir.join("readers"), format!("{READER}\n")).unwrap();
    let write = |ldap: &str, keys: &str, policy: &str| {
        std::fs::write(dir.join("keys"), keys).unwrap();
        let cfg = dir.join("c.toml");
        std::fs::write(
            &cfg,
            format!(
                "[auth]\nmodules = [\"file\", \"ldap\", \"krb5\"]\n\
                 [ldap]\nurl = {ldap:?}\nuser_dn_template = \"uid={{user}},ou=people,dc=example,dc=test\"\n\
                 [kerberos]\nkeytab = \"{krb_dir}/http.keytab\"\n\
                 credential_keys_file = {:?}\ncredential_readers_file = {:?}\n\
                 [realms.rp]\nsupersede = false\n{policy}\n",
                dir.join("keys"),
                dir.join("readers"),
            ),
        )
        .unwrap();
        cfg
    };
    // nothing listens on port 1
    let cfg = write("ldap://127.0.0.1:1", &format!("{KEY_A}\n"), "");
    let s = Server::start(Options {
        dir: Some(dir.clone()),
        ..Options::default()
            .user("bob", "bob-pw")
            .args(&["-c", cfg.to_str().unwrap()])
    });
    let login = |user: &str, password: &str, module: &str| {
        s.post_json(
            "/v1/login",
            serde_json::json!({"realm": "rp", "user": user, "password": password, "module": module}),
        )
    };
    let s = &s;
    let creds = |token: String| async move { credentials_status(s, "rp", &token).await };
    assert_eq!(login("alice", &ldap_pw, "ldap").await.status, 503);
    let before = login("bob", "bob-pw", "file").await.json();
    assert!(before["expires_at"].is_null(), "{before}");
    let under_a = login(&krb_user, &krb_pw, "krb5").await.json()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(creds(under_a.clone()).await, 200);

    write(
        &ldap_url,
        &format!("{KEY_B}\n{KEY_A}\n"),
        "max_lifetime = \"1h\"",
    );
    hup(s);
    eventually("LDAP logins reach the new directory", || async {
        login("alice", &ldap_pw, "ldap").await.status == 200
    })
    .await;
    let after = login("bob", "bob-pw", "file").await.json();
    let (created, expires) = (
        after["created"].as_i64().unwrap(),
        after["expires_at"].as_i64().unwrap(),
    );
    assert_eq!(
        expires - created,
        3600,
        "new sessions get the new policy: {after}"
    );
    let r = s
        .post_json(
            "/v1/validate",
            serde_json::json!({"realm": "rp", "token": before["token"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        r.json()["expires_at"].is_null(),
        "existing ones keep theirs: {r:?}"
    );
    assert_eq!(creds(under_a.clone()).await, 200, "the old key still opens");
    let under_b = login(&krb_user, &krb_pw, "krb5").await.json()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(creds(under_b.clone()).await, 200);

    // the old key retired: what it sealed no longer opens
    write(&ldap_url, &format!("{KEY_B}\n"), "max_lifetime = \"1h\"");
    hup(s);
    eventually("the retired key no longer opens", || async {
        creds(under_a.clone()).await != 200
    })
    .await;
    assert_eq!(
        creds(under_b.clone()).await,
        200,
        "sealed under the new key"
    );
    assert!(
        !s.stderr().contains("take effect only after a restart"),
        "all of it applied: {}",
        s.stderr()
    );
}

/// Without a key file the credential key is made at start and lives in
/// memory; a reload keeps it, or every session's credentials would become
/// unreadable at each SIGHUP.
#[tokio::test]
async fn a_reload_keeps_the_throwaway_credential_key() {
    let var = |k: &str| std::env::var(k).ok();
    let (Some(krb_user), Some(krb_pw), Some(krb_dir)) = (
        var("KRB_TEST_USER"),
        var("KRB_TEST_PASSWORD"),
        var("KRB_TEST_DIR"),
    ) else {
        common::missing::<()>("the test Kerberos realm (scripts/services.sh)");
        return;
    };
    let dir = tempfile::tempdir().unwrap().keep();
    std::fs::write(dir.join("readers"), format!("{READER}\n")).unwrap();
    let write = |rules: &str| {
        let cfg = dir.join("c.toml");
        std::fs::write(
            &cfg,
            format!(
                "[auth]\nmodules = [\"krb5\"]\ndefault_module = \"krb5\"\n\
                 [kerberos]\nkeytab = \"{krb_dir}/http.keytab\"\ncredential_readers_file = {:?}\n{rules}",
                dir.join("readers"),
            ),
        )
        .unwrap();
        cfg
    };
    let cfg = write("");
    let s = Server::start(Options {
        dir: Some(dir.clone()),
        ..Options::default().args(&["-c", cfg.to_str().unwrap()])
    });
    let r = s
        .post_json(
            "/v1/login",
            serde_json::json!({"realm": "rc", "user": krb_user, "password": krb_pw}),
        )
        .await;
    let token = r.json()["token"].as_str().unwrap().to_owned();
    let creds = || credentials_status(&s, "rc", &token);
    assert_eq!(creds().await, 200);
    write("[[access.rules]]\npaths = [\"/closed\"]\npolicy = \"deny\"\n");
    hup(&s);
    eventually("the reload applied", || async {
        s.request(
            "GET",
            "/auth",
            &[("X-Original-URL", "http://app.test/closed")],
            b"",
        )
        .await
        .status
            == 403
    })
    .await;
    assert_eq!(
        creds().await,
        200,
        "sealed before the reload, opened after it"
    );
}
