//! Realm policy from a configuration file reaches the sessions: absolute and
//! idle expiry, supersede switched off, and the background sweep. (The exact
//! boundaries are tested with a controllable clock in the store conformance
//! suite; this checks the wiring, with real seconds.)

mod common;

use common::{Options, Server};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn realm_policy_expiry_and_sweep() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("sessiond.toml"),
        r#"
        [store]
        sweep_interval = "1s"
        [realms.short]
        max_lifetime = "2 seconds"
        [realms.idle]
        idle_timeout = "3s"
        supersede = false
        "#,
    )
    .unwrap();
    common::add_user(dir.path(), "alice", "alice-pw");
    let s = Server::start(Options {
        dir: Some(dir.path().to_owned()),
        ..Options::default().args(&["-c", "sessiond.toml"])
    });
    let login = |realm: &'static str| {
        let s = &s;
        async move {
            let r = s
                .post_json(
                    "/v1/login",
                    json!({"realm": realm, "user": "alice", "password": "alice-pw"}),
                )
                .await;
            assert_eq!(r.status, 200, "{r:?}");
            r.json()
        }
    };
    let short = login("short").await;
    assert_eq!(
        short["expires_at"].as_i64(),
        Some(short["created"].as_i64().unwrap() + 2)
    );
    let forever = login("forever").await;
    assert_eq!(forever["expires_at"], serde_json::Value::Null);
    let idle_a = login("idle").await;
    let idle_b = login("idle").await;
    let valid = |realm: &str, j: &serde_json::Value| {
        format!(
            "/valid?realm={realm}&token={}",
            j["token"].as_str().unwrap()
        )
    };
    s.get(&valid("idle", &idle_a))
        .await
        .assert_text(200, "YES\nalice\nauth/file\n\n");
    s.get(&valid("idle", &idle_b))
        .await
        .assert_text(200, "YES\nalice\nauth/file\n\n");

    // keep idle_b busy for 4.5 s; leave idle_a and short alone
    for _ in 0..9 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        s.get(&valid("idle", &idle_b))
            .await
            .assert_text(200, "YES\nalice\nauth/file\n\n");
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let metrics = s.get("/metrics").await.text();
    let purged: u64 = metrics
        .lines()
        .find(|l| l.starts_with("sessiond_sessions_purged_total"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(
        purged >= 2,
        "the sweep purged the expired sessions:\n{metrics}"
    );
    s.get(&valid("short", &short))
        .await
        .assert_text(200, "NO\n");
    s.get(&valid("idle", &idle_a))
        .await
        .assert_text(200, "NO\n");
    s.get(&valid("idle", &idle_b))
        .await
        .assert_text(200, "YES\nalice\nauth/file\n\n");
    s.get(&valid("forever", &forever))
        .await
        .assert_text(200, "YES\nalice\nauth/file\n\n");
}
