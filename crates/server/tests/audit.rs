//! Audit events against the real binary: each security-relevant action
//! gives exactly one event with the right fields, the request id ties an
//! event to its answer, nothing secret is ever in one, and the file is
//! reopened on SIGHUP for logrotate.

mod common;

use common::{Options, Server};
use serde_json::Value;

const ADMIN: &str = "admin-credential-of-the-audit-test";
const READER: &str = "reader-credential-of-the-audit-test";
const TICKET_SECRET: &str = "0123456789abcdef0123456789abcdef";

fn server() -> Server {
    let dir = tempfile::tempdir().unwrap().keep();
    std::fs::write(dir.join("admin"), ADMIN).unwrap();
    let cfg = dir.join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server]\nadmin_token_file = {:?}\n[browser.cookie]\nsecure = false\n\
             [realms.tk.ticket]\nsecrets_env = \"AUDIT_TEST_TICKET_SECRET\"\ncookie_secure = false\n",
            dir.join("admin")
        ),
    )
    .unwrap();
    Server::start(Options {
        dir: Some(dir),
        ..Options::default()
            .user_in("alice", "alice-pw", "dev")
            .args(&["-c", cfg.to_str().unwrap()])
            .env("AUDIT_TEST_TICKET_SECRET", TICKET_SECRET)
            .env("SESSIOND_CREDENTIAL_READERS", READER)
            .env("SESSIOND_AUTH__MAX_FAILURES_PER_USER", "2")
    })
}

/// (event, outcome, reason) of each event, in order.
fn summary(events: &[Value]) -> Vec<(String, String, String)> {
    events
        .iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or("").to_owned();
            (s("event"), s("outcome"), s("reason"))
        })
        .collect()
}

fn t(event: &str, outcome: &str, reason: &str) -> (String, String, String) {
    (event.into(), outcome.into(), reason.into())
}

#[tokio::test]
async fn every_action_is_one_event_with_its_fields() {
    let s = server();
    // a login: success, with the session's short id and the request's id
    let r = s
        .post_json(
            "/v1/login",
            serde_json::json!({"realm": "rc", "user": "alice", "password": "alice-pw"}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let token = r.json()["token"].as_str().unwrap().to_owned();
    let request_id = r
        .header("x-request-id")
        .expect("every answer has an id")
        .to_owned();
    let events = s.audit_events();
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!(e["event"], "login");
    assert_eq!(e["outcome"], "success");
    assert_eq!(e["realm"], "rc");
    assert_eq!(e["user"], "alice");
    assert_eq!(e["source"], "auth/file");
    assert_eq!(e["client"], "127.0.0.1");
    assert_eq!(e["request_id"], request_id.as_str());
    assert_eq!(e["session"].as_str().unwrap().len(), 8);
    assert!(token.starts_with(e["session"].as_str().unwrap()) || !token.is_empty());
    assert!(e["time"].as_str().unwrap().ends_with('Z'), "{e}");

    // /valid is not an event (a check, not an action)
    s.get(&format!("/valid?realm=rc&token={token}")).await;
    // replace, then revoke the new token
    let r = s.get(&format!("/replace?realm=rc&token={token}")).await;
    let fresh = r.text().lines().next().unwrap().to_owned();
    s.get(&format!("/revoke?realm=rc&token={fresh}"))
        .await
        .assert_text(200, "OK\n");
    // two wrong passwords, then the limit: throttled, not a third failure
    for _ in 0..2 {
        let r = s
            .get("/auth_token?realm=rc&user=alice&pwd=wrong-secret")
            .await;
        assert_eq!(r.status, 403, "{r:?}");
    }
    let r = s
        .get("/auth_token?realm=rc&user=alice&pwd=wrong-secret")
        .await;
    assert_eq!(r.status, 429, "{r:?}");
    // admin: a wrong credential, then a listing, the tickets and ending a user
    for (method, path, credential, status) in [
        (
            "GET",
            "/v1/users/rc/alice/sessions",
            "not-the-admin-credential",
            403,
        ),
        ("GET", "/v1/users/rc/alice/sessions", ADMIN, 200),
        ("DELETE", "/v1/users/tk/alice/tickets", ADMIN, 200),
        ("DELETE", "/v1/users/alice/sessions", ADMIN, 200),
    ] {
        let auth = format!("Bearer {credential}");
        let r = s
            .request(method, path, &[("Authorization", &auth)], b"")
            .await;
        assert_eq!(r.status, status, "{method} {path}: {r:?}");
    }
    let bearer = |c: &str| format!("Bearer {c}");
    // a back end that is not one asks for credentials
    let r = s
        .request(
            "GET",
            "/v1/sessions/credentials?realm=rc",
            &[
                ("Authorization", &bearer("not-a-reader-credential-at-all")),
                ("X-Sessiond-Token", &token),
            ],
            b"",
        )
        .await;
    assert_eq!(r.status, 403, "{r:?}");

    let events = s.audit_events();
    assert_eq!(
        summary(&events),
        [
            t("login", "success", ""),
            t("replace", "success", ""),
            t("revoke", "success", ""),
            t("login", "failure", "authentication_failed"),
            t("login", "failure", "authentication_failed"),
            t("throttled", "failure", "rate_limited"),
            t("admin", "failure", "wrong_credential"),
            t("admin", "success", "list_sessions"),
            t("ticket_revoke", "success", "admin_request"),
            t("end_user", "success", "admin_request"),
            t("credential_fetch", "failure", "wrong_credential"),
        ],
        "{events:#?}"
    );
    // the replace names both sessions; the revoke names the new one
    assert_eq!(events[1]["session"], events[0]["session"]);
    assert_eq!(events[1]["replaced_by"], events[2]["session"]);
    assert_eq!(events[3]["source"], "auth/file");
    assert_eq!(events[5]["user"], "alice");
    // every event belongs to a request, each to its own
    let ids: std::collections::BTreeSet<&str> = events
        .iter()
        .map(|e| e["request_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), events.len());
    // nothing secret: no token, password, credential or ticket secret
    let raw = std::fs::read_to_string(s.dir.join("audit.log")).unwrap();
    for secret in [
        token.as_str(),
        fresh.as_str(),
        "alice-pw",
        "wrong-secret",
        ADMIN,
        READER,
        "not-the-admin-credential",
        "not-a-reader-credential-at-all",
        TICKET_SECRET,
    ] {
        assert!(!raw.contains(secret), "the audit log holds {secret:?}");
    }
    assert_eq!(common::audit_secrets(&raw), None);
}

#[tokio::test]
async fn browser_logins_logouts_and_ticket_logins() {
    let s = server();
    let form = ("Content-Type", "application/x-www-form-urlencoded");
    let origin = ("Origin", "http://localhost");
    let r = s
        .request(
            "POST",
            "/session/login_password",
            &[form, origin],
            b"user=alice&password=alice-pw",
        )
        .await;
    assert_eq!(r.status, 303, "{r:?}");
    let cookie = r.cookie();
    let r = s
        .request(
            "POST",
            "/session/logout",
            &[("Cookie", &cookie), origin],
            b"",
        )
        .await;
    assert_eq!(r.status, 303, "{r:?}");
    // a ticket realm: the login makes a session and a ticket, one event
    let r = s
        .request(
            "POST",
            "/session/login_password",
            &[form, origin],
            b"user=alice&password=alice-pw&realm=tk",
        )
        .await;
    assert_eq!(r.status, 303, "{r:?}");
    let events = s.audit_events();
    assert_eq!(
        summary(&events),
        [
            t("login", "success", ""),
            t("logout", "success", ""),
            t("login", "success", ""),
        ],
        "{events:#?}"
    );
    assert_eq!(events[0]["session"], events[1]["session"]);
    assert_eq!(events[2]["realm"], "tk");
    let raw = std::fs::read_to_string(s.dir.join("audit.log")).unwrap();
    let ticket = r
        .header_all("set-cookie")
        .into_iter()
        .find(|c| c.starts_with("auth_tkt="))
        .expect("a ticket")
        .to_owned();
    let value = ticket.split(';').next().unwrap().split_once('=').unwrap().1;
    assert!(
        !raw.contains(value.trim_matches('"')),
        "no ticket in the audit log"
    );
}

/// logrotate moves the file away and sends SIGHUP: the next event goes to a
/// new file at the configured path.
#[tokio::test]
async fn the_audit_file_is_reopened_on_sighup() {
    let s = server();
    let login = || {
        s.post_json(
            "/v1/login",
            serde_json::json!({"realm": "rc", "user": "alice", "password": "alice-pw"}),
        )
    };
    assert_eq!(login().await.status, 200);
    let path = s.dir.join("audit.log");
    let rotated = s.dir.join("audit.log.1");
    std::fs::rename(&path, &rotated).unwrap();
    assert!(std::process::Command::new("kill")
        .args(["-HUP", &s.child.id().to_string()])
        .status()
        .unwrap()
        .success());
    // the server goes on, and writes the next event to the new file
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !path.exists() {
        assert!(std::time::Instant::now() < deadline, "no new audit file");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(login().await.status, 200);
    // the second login supersedes the first: two events, both new
    assert_eq!(
        summary(&s.audit_events()),
        [
            t("login", "success", ""),
            t("supersede", "success", "newer_login")
        ],
        "the new file has the new events"
    );
    let old = std::fs::read_to_string(&rotated).unwrap();
    assert_eq!(old.lines().count(), 1, "the rotated file keeps the old one");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "audit files are the server's alone");
    }
}

/// A later login that supersedes earlier ones is a `supersede` event (the
/// first login is not); a check that finds a session past its end is one
/// `expire` event, with the end it reached, and only once.
#[tokio::test]
async fn supersede_and_expiry_seen_on_a_check() {
    let s = Server::start(
        Options::default()
            .user("alice", "alice-pw")
            .env("SESSIOND_REALMS__EX__IDLE_TIMEOUT", "1s")
            .env("SESSIOND_REALMS__EX__SUPERSEDE", "false"),
    );
    let first = common::login(&s, "rc", "alice", "alice-pw").await;
    common::login(&s, "rc", "alice", "alice-pw").await;
    s.get(&format!("/valid?realm=rc&token={first}"))
        .await
        .assert_text(200, "SUPERCEDED\nalice\nauth/file\n\n");
    let short = common::login(&s, "ex", "alice", "alice-pw").await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    for _ in 0..2 {
        s.get(&format!("/valid?realm=ex&token={short}"))
            .await
            .assert_text(200, "NO\n");
    }
    let events = s.audit_events();
    assert_eq!(
        summary(&events),
        [
            t("login", "success", ""),
            t("login", "success", ""),
            t("supersede", "success", "newer_login"),
            t("login", "success", ""),
            t("expire", "success", "idle_timeout"),
        ],
        "{events:#?}"
    );
    // the supersede names the new login's session and shares its request
    assert_eq!(events[2]["session"], events[1]["session"]);
    assert_eq!(events[2]["request_id"], events[1]["request_id"]);
    // the expiry names the session, its realm and user
    assert_eq!(events[4]["session"], events[3]["session"]);
    assert_eq!(
        (events[4]["realm"].as_str(), events[4]["user"].as_str()),
        (Some("ex"), Some("alice"))
    );
    assert!(events[4]["request_id"].is_string(), "the check's request");
}
