//! The security promises of issue 11, against the real binary: a changed
//! password or a deleted account ends every session; parameter floods are
//! refused cheaply; identities and secrets never leak into answers.

mod common;

use common::{login, Options, Server, BIN};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

const ADMIN: &str = "admin-credential-0123456789abcdef";

fn cli_user(dir: &std::path::Path, action: &str, name: &str, pw: Option<&str>) {
    let mut child = Command::new(BIN)
        .args(["user", action, name, "-f"])
        .arg(dir.join("passwd"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    if let Some(pw) = pw {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{pw}\n").as_bytes())
            .unwrap();
    }
    assert!(child.wait().unwrap().success(), "sessiond user {action}");
}

async fn valid(s: &Server, realm: &str, token: &str) -> String {
    let text = s
        .get(&format!("/valid?realm={realm}&token={token}"))
        .await
        .text();
    text.lines().next().unwrap_or_default().to_owned()
}

/// Polls until `token` stops being valid in `realm` (the watcher looks at
/// the password file every second).
async fn until_ended(s: &Server, realm: &str, token: &str) -> bool {
    for _ in 0..60 {
        if valid(s, realm, token).await == "NO" {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

fn file_store(dir: &std::path::Path) -> Options {
    Options {
        dir: Some(dir.to_owned()),
        ..Options::default()
            .args(&["-d", "data"])
            .env("SESSIOND_ADMIN_TOKEN", ADMIN)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_change_and_deleted_user_end_every_session_in_every_realm() {
    let dir = tempfile::tempdir().unwrap();
    common::add_user(dir.path(), "alice", "alice-pw");
    common::add_user(dir.path(), "bob", "bob-pw");
    common::add_user(dir.path(), "carol", "carol-pw");
    let mut s = Server::start(file_store(dir.path()));
    let a1 = login(&s, "rc", "alice", "alice-pw").await;
    let a2 = login(&s, "other", "alice", "alice-pw").await;
    let b = login(&s, "rc", "bob", "bob-pw").await;
    // Let the watcher record the file's state before it changes.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    cli_user(dir.path(), "passwd", "alice", Some("new-alice-pw"));
    assert!(until_ended(&s, "rc", &a1).await, "{}", s.stderr());
    assert_eq!(valid(&s, "other", &a2).await, "NO", "every realm");
    assert_eq!(valid(&s, "rc", &b).await, "YES", "other users untouched");

    // The new password works, and its session is not ended after the fact.
    let a3 = login(&s, "rc", "alice", "new-alice-pw").await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(valid(&s, "rc", &a3).await, "YES");

    cli_user(dir.path(), "del", "bob", None);
    assert!(
        until_ended(&s, "rc", &b).await,
        "deleting a user ends their sessions"
    );

    // A change made while no server runs is acted on at the next start.
    let c = login(&s, "rc", "carol", "carol-pw").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    s.kill9();
    drop(s);
    cli_user(dir.path(), "passwd", "carol", Some("new-carol-pw"));
    let s = Server::start(file_store(dir.path()));
    assert!(until_ended(&s, "rc", &c).await, "changed while stopped");
    assert_eq!(valid(&s, "rc", &a3).await, "YES");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_ends_a_user_in_every_realm() {
    let s = Server::start(
        Options::default()
            .user("alice", "alice-pw")
            .user("bob", "bob-pw")
            .env("SESSIOND_ADMIN_TOKEN", ADMIN),
    );
    let a1 = login(&s, "rc", "alice", "alice-pw").await;
    let a2 = login(&s, "web", "alice", "alice-pw").await;
    let b = login(&s, "rc", "bob", "bob-pw").await;
    let auth = format!("Bearer {ADMIN}");
    let r = s
        .request(
            "DELETE",
            "/v1/users/alice/sessions",
            &[("Authorization", "Bearer wrong-credential")],
            b"",
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(valid(&s, "rc", &a1).await, "YES");
    let r = s
        .request(
            "DELETE",
            "/v1/users/alice/sessions",
            &[("Authorization", &auth)],
            b"",
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["sessions_ended"], 2);
    assert_eq!(valid(&s, "rc", &a1).await, "NO");
    assert_eq!(valid(&s, "web", &a2).await, "NO");
    assert_eq!(valid(&s, "rc", &b).await, "YES");
    let r = s
        .request(
            "DELETE",
            "/v1/users/al%0Aice/sessions",
            &[("Authorization", &auth)],
            b"",
        )
        .await;
    assert_eq!(r.status, 400, "{r:?}");
}

/// 8,000 names in the URL and 8,000 in the body once cost half a second of
/// CPU (quadratic decoding); now the count is capped and the answer says so.
#[tokio::test]
async fn parameter_floods_are_refused_with_a_clear_message() {
    let s = Server::start(Options::default().user("alice", "alice-pw"));
    let t = login(&s, "rc", "alice", "alice-pw").await;
    let names = |prefix: &str| {
        (0..8000)
            .map(|i| format!("{prefix}{i}=x"))
            .collect::<Vec<_>>()
            .join("&")
    };
    let r = s
        .post_form(&format!("/valid?realm=rc&{}", names("q")), &names("b"))
        .await;
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.text().contains("too many parameters"), "{}", r.text());
    // Within the cap, everything works as before.
    let some = (0..200)
        .map(|i| format!("n{i}=x"))
        .collect::<Vec<_>>()
        .join("&");
    let r = s
        .post_form(&format!("/valid?realm=rc&{some}"), &format!("token={t}"))
        .await;
    assert_eq!(r.text().lines().next(), Some("YES"), "{r:?}");
}
