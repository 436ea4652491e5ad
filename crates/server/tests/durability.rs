//! What the file store keeps across crashes, read back both through the API
//! and, after the server stopped, straight from the data file — which is also
//! how the `/group_hash` formula is checked against the stored group key.

mod common;

use common::{login, Options, Server};
use sessiond_store::{FileStore, Groups, StoreOptions};
use sha2::{Digest, Sha256};

fn file_options(dir: &std::path::Path) -> Options {
    Options {
        dir: Some(dir.to_owned()),
        ..Options::default().args(&["-d", "data"])
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_and_groups_survive_kill_9_and_the_hash_formula_holds() {
    let dir = tempfile::tempdir().unwrap();
    common::add_user(dir.path(), "alice", "alice-pw");
    let mut s = Server::start(file_options(dir.path()));
    let t = login(&s, "rc", "alice", "alice-pw").await;
    let key = s.get(&format!("/gen_key?realm=rc&token={t}")).await.text();
    s.get(&format!("/create_group?realm=rc&token={t}&group=g1"))
        .await
        .assert_text(200, "OK\n");
    let hash = s
        .get(&format!("/group_hash?realm=rc&token={t}&group=g1&salt=s1"))
        .await
        .text();
    let plain = s
        .get(&format!("/group_hash?realm=rc&token={t}&group=g1"))
        .await
        .text();
    s.kill9();
    drop(s);

    let s = Server::start(file_options(dir.path()));
    s.get(&format!("/valid?realm=rc&token={t}"))
        .await
        .assert_text(200, "YES\nalice\nauth/file\n\n");
    s.get(&format!("/get_key?realm=rc&token={t}"))
        .await
        .assert_text(200, &key);
    s.get(&format!("/group_hash?realm=rc&token={t}&group=g1&salt=s1"))
        .await
        .assert_text(200, &hash);
    drop(s);

    // the stored group key, read from the file: hash = hex(SHA-256(salt "\n" key))
    let store = FileStore::open(&dir.path().join("data"), StoreOptions::default()).unwrap();
    let group_key = store
        .group_key("g1")
        .await
        .unwrap()
        .expect("group key stored");
    assert_eq!(group_key.len(), 40);
    let expect = |salt: &str| {
        format!(
            "{}\n",
            hex::encode(Sha256::digest(format!("{salt}\n{group_key}")))
        )
    };
    assert_eq!(hash, expect("s1"));
    assert_eq!(plain, expect(""));
    // and no token anywhere in the file
    let bytes = std::fs::read(dir.path().join("data/sessions.redb")).unwrap();
    assert!(!String::from_utf8_lossy(&bytes).contains(&t));
}

#[tokio::test]
async fn stored_tokens_have_their_own_key_slot() {
    let admin = "admin-credential-0123456789";
    let s = Server::start(
        Options::default()
            .user("alice", "alice-pw")
            .env("SESSIOND_ADMIN_TOKEN", admin),
    );
    let real = login(&s, "rc", "alice", "alice-pw").await;
    let real_key = s
        .get(&format!("/gen_key?realm=rc&token={real}"))
        .await
        .text();
    let stored = "s".repeat(40);
    let auth = format!("Bearer {admin}");
    let r = s
        .request(
            "GET",
            &format!("/stored_token?realm=other&user=alice&token={stored}"),
            &[("Authorization", &auth)],
            b"",
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    s.get(&format!("/get_key?realm=other&token={stored}"))
        .await
        .assert_empty_chunked();
    let stored_key = s
        .get(&format!("/gen_key?realm=other&token={stored}"))
        .await
        .text();
    assert_ne!(stored_key, real_key);
    s.get(&format!("/get_key?realm=rc&token={real}"))
        .await
        .assert_text(200, &real_key);
}

#[tokio::test]
async fn slow_requests_are_cut_off() {
    let s = Server::start(Options::default().env("SESSIOND_SERVER__REQUEST_TIMEOUT", "1s"));
    // a body that never arrives: the original waited forever
    let started = std::time::Instant::now();
    let r = s
        .raw(b"POST /valid?realm=r HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 50\r\n\r\ntoken=")
        .await;
    assert_eq!(r.status, 408, "{r:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

#[tokio::test]
async fn sigterm_stops_the_server_cleanly() {
    // SIGTERM straight after the start line: the handlers must already be in
    // place (they once were installed lazily, and CI caught the window).
    let mut s = Server::start(Options::default());
    let pid = s.child.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        if let Some(status) = s.child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status:?}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still running 15 s after SIGTERM"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(s.stderr().contains("shutting down"), "{}", s.stderr());
}
