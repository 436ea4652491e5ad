//! Start-up behaviour: TLS from PEM files, SessionKeyServer-style flags, and
//! configuration errors that name the file, the key and the reason.

mod common;

use common::{login, Options, Server, BIN};
use std::process::Command;
use std::sync::Arc;

#[tokio::test]
async fn tls_from_pem_files() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cert_pem = dir.path().join("cert.pem");
    let key_pem = dir.path().join("key.pem");
    std::fs::write(&cert_pem, cert.cert.pem()).unwrap();
    std::fs::write(&key_pem, cert.signing_key.serialize_pem()).unwrap();
    let combined = dir.path().join("combined.pem");
    std::fs::write(
        &combined,
        format!("{}{}", cert.cert.pem(), cert.signing_key.serialize_pem()),
    )
    .unwrap();

    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots.clone())
    .with_no_client_auth();
    let client = Arc::new(client);

    let separate = Options {
        tls: Some(client.clone()),
        ..Options::default().user("alice", "alice-pw").args(&[
            "-tls",
            cert_pem.to_str().unwrap(),
            "--tls-key",
            key_pem.to_str().unwrap(),
        ])
    };
    let s = Server::start(separate);
    let t = login(&s, "rc", "alice", "alice-pw").await;
    s.get(&format!("/valid?realm=rc&token={t}"))
        .await
        .assert_text(200, "YES\nalice\nauth/file\n\n");

    let one_file = Options {
        tls: Some(client),
        ..Options::default().args(&["-tls", combined.to_str().unwrap()])
    };
    let s = Server::start(one_file);
    s.get("/version").await.assert_text(200, "1.5\n");
    // both TLS 1.3 and TLS 1.2 clients are served, as by the original
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let only = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(&[version])
        .unwrap()
        .with_root_certificates(roots.clone())
        .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(only));
        let tcp = tokio::net::TcpStream::connect(&s.addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut tls = connector.connect(name, tcp).await.expect("handshake");
        assert_eq!(tls.get_ref().1.protocol_version(), Some(version.version));
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        tls.write_all(b"GET /version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = Vec::new();
        let _ = tls.read_to_end(&mut answer).await;
        assert!(answer.ends_with(b"\r\n\r\n1.5\n"), "{version:?}");
    }
    // plain HTTP to the TLS port gets no HTTP answer
    let mut stream = tokio::net::TcpStream::connect(&s.addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = stream.read_to_end(&mut buf).await;
    assert!(!String::from_utf8_lossy(&buf).contains("1.5"));

    let err = Server::try_start(Options::default().args(&["-tls", cert_pem.to_str().unwrap()]))
        .err()
        .unwrap();
    assert!(err.contains("no private key found"), "{err}");
}

fn start_error(args: &[&str], env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir.path())
        .args(args)
        .env_remove("SESSIOND_CONFIG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(!out.status.success(), "should fail: {args:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn invalid_configuration_fails_with_file_key_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[realms.web]\nidle_timeout = \"10 parsecs\"\n").unwrap();
    let err = start_error(&["serve", "-c", file.to_str().unwrap()], &[]);
    assert!(err.contains("bad.toml"), "{err}");
    assert!(err.contains("idle_timeout"), "{err}");
    assert!(
        err.contains("unknown time duration unit \"parsecs\""),
        "{err}"
    );

    let err = start_error(&["serve"], &[("SESSIOND_SERVER__BIND", "not-an-address")]);
    assert!(err.contains("server.bind"), "{err}");
    let err = start_error(&["serve"], &[("SESSIOND_SERVER__BIDN", "x")]);
    assert!(err.contains("BIDN") || err.contains("bidn"), "{err}");
    let err = start_error(&["serve", "-c", "/nonexistent/sessiond.toml"], &[]);
    assert!(
        err.contains("/nonexistent/sessiond.toml does not exist"),
        "{err}"
    );
    let err = start_error(&["serve", "-default", "krb5"], &[]);
    assert!(err.contains("auth.default_module"), "{err}");
    let err = start_error(&["serve"], &[("SESSIOND_ADMIN_TOKEN", "short")]);
    assert!(err.contains("at least 16 characters"), "{err}");

    // Found at start, not by a panic on the first request that sets a cookie.
    let err = start_error(
        &["serve"],
        &[("SESSIOND_BROWSER__COOKIE__DOMAIN", "exa mple.com")],
    );
    assert!(err.contains("browser.cookie.domain"), "{err}");
    std::fs::write(
        &file,
        "[realms.web.ticket]\nsecrets_env = \"T\"\ncookie_path = \"tickets\"\n",
    )
    .unwrap();
    let err = start_error(&["serve", "-c", file.to_str().unwrap()], &[]);
    assert!(err.contains("realms.web.ticket.cookie_path"), "{err}");
    // Whole seconds get the same upper bound as written durations.
    let err = start_error(
        &["serve"],
        &[(
            "SESSIOND_STORE__SUPERSEDED_RETENTION",
            "18446744073709551615",
        )],
    );
    assert!(err.contains("too large"), "{err}");
}

#[tokio::test]
async fn sessionkeyserver_flags_without_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    common::add_user(dir.path(), "alice", "alice-pw");
    let mut child = Command::new(BIN)
        .current_dir(dir.path())
        .args(["-l", "127.0.0.1", "-p", "0", "-d", "db", "-default", "file"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(line.starts_with("sessiond "), "{line}");
    assert!(line.contains("is listening on http://127.0.0.1:"), "{line}");
    assert!(line.contains("store: file db/sessions.redb"), "{line}");
    assert!(dir.path().join("db/sessions.redb").exists());
}

#[test]
fn user_cli_manages_the_password_file() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str], stdin: &str| {
        let (ok, out, err) = run_cli(dir.path(), args, stdin);
        (ok, out + &err)
    };
    assert!(run(&["user", "add", "alice"], "pw1\n").0);
    assert!(
        dir.path().join("sessiond-data/passwd").exists(),
        "default data directory"
    );
    let (ok, out) = run(&["user", "add", "alice"], "pw2\n");
    assert!(!ok && out.contains("already exists"), "{out}");
    let (ok, out) = run(&["user", "add", "bob"], "");
    assert!(!ok && out.contains("password is empty"), "{out}");
    assert!(run(&["user", "add", "bob"], "pw-b\n").0);
    assert!(run(&["user", "passwd", "alice"], "pw3\n").0);
    assert_eq!(run(&["user", "list"], "").1, "alice\nbob\n");
    assert!(run(&["user", "del", "bob"], "").0);
    let (ok, out) = run(&["user", "del", "bob"], "");
    assert!(!ok && out.contains("no such user"), "{out}");
    let text = std::fs::read_to_string(dir.path().join("sessiond-data/passwd")).unwrap();
    assert!(
        !text.contains("pw3") && text.contains("alice:$argon2id$"),
        "{text}"
    );
}

#[tokio::test]
async fn a_second_server_cannot_open_the_same_file_store() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        dir: Some(dir.path().to_owned()),
        ..Options::default().args(&["-d", "data"])
    };
    let _first = Server::start(opts.clone());
    let err = Server::try_start(opts)
        .err()
        .expect("second server must not start");
    assert!(err.contains("cannot open session store"), "{err}");
    assert!(err.contains("data/sessions.redb"), "{err}");
}

#[test]
fn check_config_prints_a_usable_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .current_dir(dir.path())
        .args(["check-config", "-d", "db", "-p", "9000", "-default", "file"])
        .env("SESSIOND_REALMS__WEB__IDLE_TIMEOUT", "1h30m")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("bind = \"127.0.0.1:9000\""), "{text}");
    assert!(text.contains("kind = \"file\""), "{text}");
    assert!(text.contains("idle_timeout = \"1h30m\""), "{text}");
    assert!(text.ends_with("# configuration is valid\n"), "{text}");
    // what it prints is itself a valid configuration file
    std::fs::write(dir.path().join("printed.toml"), &text).unwrap();
    let again = Command::new(BIN)
        .current_dir(dir.path())
        .args(["check-config", "-c", "printed.toml"])
        .output()
        .unwrap();
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(String::from_utf8(again.stdout).unwrap(), text);
}

/// Store passwords never reach `check-config`'s output, a file can hold the
/// address, and `--store-url` with a password is warned about.
#[test]
fn store_passwords_stay_out_of_output_and_the_process_list() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("store-url"),
        "redis://sessiond:s3cret-pw@127.0.0.1:6379/0\n",
    )
    .unwrap();
    let (ok, out, err) = run_cli(dir.path(), &["check-config", "--store", "redis"], "");
    assert!(!ok, "a shared store without an address is refused: {out}");
    assert!(err.contains("store.url"), "{err}");
    std::fs::write(
        dir.path().join("c.toml"),
        "[store]\nkind = \"redis\"\nurl_file = \"store-url\"\n",
    )
    .unwrap();
    let (ok, out, err) = run_cli(dir.path(), &["check-config", "-c", "c.toml"], "");
    assert!(ok, "{err}");
    assert!(out.contains("url_file = \"store-url\""), "{out}");
    assert!(!out.contains("s3cret-pw"), "{out}");
    // what it prints loads again
    std::fs::write(dir.path().join("printed.toml"), &out).unwrap();
    let (ok, _, err) = run_cli(dir.path(), &["check-config", "-c", "printed.toml"], "");
    assert!(ok, "{err}");
    let (ok, out, err) = run_cli(
        dir.path(),
        &[
            "check-config",
            "--store",
            "redis",
            "--store-url",
            "redis://:s3cret-pw@127.0.0.1:6379/0",
        ],
        "",
    );
    assert!(ok, "{err}");
    assert!(out.contains("redis://***@127.0.0.1:6379/0"), "{out}");
    assert!(!out.contains("s3cret-pw"), "{out}");
    let (ok, out, err) = run_cli(
        dir.path(),
        &[
            "check-config",
            "--store",
            "postgres",
            "--store-url",
            "postgres://u:s3cret-pw@127.0.0.1/db",
        ],
        "",
    );
    assert!(ok, "{err}");
    assert!(!out.contains("s3cret-pw"), "{out}");
    assert!(err.contains("process list"), "{err}");
    // a user name alone is no secret: no warning
    let (ok, _, err) = run_cli(
        dir.path(),
        &[
            "check-config",
            "--store",
            "postgres",
            "--store-url",
            "postgres://root@127.0.0.1/db",
        ],
        "",
    );
    assert!(ok, "{err}");
    assert!(!err.contains("process list"), "{err}");
    std::fs::write(
        dir.path().join("both.toml"),
        "[store]\nkind = \"redis\"\nurl = \"redis://x\"\nurl_file = \"store-url\"\n",
    )
    .unwrap();
    let (ok, _, err) = run_cli(dir.path(), &["check-config", "-c", "both.toml"], "");
    assert!(!ok && err.contains("not both"), "{err}");
}

/// Runs `sessiond token …` in `dir` with `stdin`; (exit success, stdout, stderr).
fn token_cli(dir: &std::path::Path, args: &[&str], stdin: &str) -> (bool, String, String) {
    run_cli(dir, &[&["token"], args].concat(), stdin)
}

/// Runs `sessiond ARGS` in `dir` with `stdin`; (exit success, stdout, stderr).
fn run_cli(dir: &std::path::Path, args: &[&str], stdin: &str) -> (bool, String, String) {
    use std::io::Write;
    let mut c = Command::new(BIN)
        .current_dir(dir)
        .args(args)
        .env_remove("SESSIOND_CONFIG")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = c.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn token_cli_issues_checks_and_revokes_in_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let store = ["-d", "data"];
    // the store flags after the action, as docs/operations.md writes them
    let with = |extra: &[&'static str]| [&extra[..1], &store[..], &extra[1..]].concat();

    let (ok, out, err) = token_cli(
        d,
        &with(&["issue", "--realm", "demo", "--user", "job1"]),
        "",
    );
    assert!(ok, "{err}");
    let (first, rest) = out.split_once('\n').unwrap();
    assert_eq!(first.len(), 64, "{out:?}");
    assert_eq!(rest, "job1\ncli\n", "the /auth_token shape");
    let first = first.to_owned();

    // the server on the same store accepts it
    let opts = Options {
        dir: Some(d.to_owned()),
        ..Options::default().args(&store)
    };
    let server = Server::start(opts);
    server
        .get(&format!("/valid?realm=demo&token={first}"))
        .await
        .assert_text(200, "YES\njob1\ncli\n\n");
    // ... which holds the file store's lock meanwhile
    let (ok, _, err) = token_cli(d, &with(&["check", "--realm", "demo"]), &first);
    assert!(!ok && err.contains("lock"), "{err}");
    drop(server);

    let (ok, out, _) = token_cli(
        d,
        &with(&["check", "--realm", "demo"]),
        &format!("{first}\n"),
    );
    assert!(ok);
    assert_eq!(out, "YES\njob1\ncli\n");
    let (ok, out, _) = token_cli(d, &with(&["check", "--realm", "other"]), &first);
    assert!(!ok);
    assert_eq!(out, "NO\n", "tokens are bound to their realm");

    // a second issue supersedes the first, like a login
    let (ok, out, _) = token_cli(
        d,
        &with(&[
            "issue", "--realm", "demo", "--user", "job1", "--source", "batch",
        ]),
        "",
    );
    assert!(ok);
    let second = out.lines().next().unwrap().to_owned();
    let (ok, out, _) = token_cli(d, &with(&["check", "--realm", "demo"]), &first);
    assert!(!ok);
    assert_eq!(out, "SUPERCEDED\njob1\ncli\n");

    let (ok, out, _) = token_cli(d, &with(&["revoke", "--realm", "demo"]), &second);
    assert!(ok);
    assert_eq!(out, "OK\n");
    let (ok, out, _) = token_cli(d, &with(&["revoke", "--realm", "demo"]), &second);
    assert!(!ok);
    assert_eq!(out, "INVALID\n");
    let (ok, out, _) = token_cli(d, &with(&["check", "--realm", "demo"]), &second);
    assert!(!ok);
    assert_eq!(out, "NO\n");

    // clear refusals
    let (ok, _, err) = token_cli(d, &with(&["check", "--realm", "demo"]), "");
    assert!(!ok && err.contains("no token on standard input"), "{err}");
    let (ok, _, err) = token_cli(
        d,
        &with(&["issue", "--realm", "demo", "--user", "eve\nadmin"]),
        "",
    );
    assert!(
        !ok && err.contains("--user must not contain control characters"),
        "{err}"
    );
    let (ok, _, err) = token_cli(d, &["check", "--realm", "demo"], &first);
    assert!(!ok && err.contains("memory store"), "{err}");
}
