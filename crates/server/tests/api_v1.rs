//! The `/v1` JSON API and the operational endpoints, against the real binary.

mod common;

use common::{Options, Server};
use serde_json::json;

fn server() -> Server {
    Server::start(Options::default().user("alice", "alice-pw"))
}

async fn v1_login(s: &Server) -> String {
    let r = s
        .post_json(
            "/v1/login",
            json!({"realm": "app", "user": "alice", "password": "alice-pw"}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let j = r.json();
    assert_eq!(j["user"], "alice");
    assert_eq!(j["source"], "auth/file");
    assert_eq!(j["realm"], "app");
    j["token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn login_validate_replace_revoke() {
    let s = server();
    let t = v1_login(&s).await;
    let r = s
        .post_json("/v1/validate", json!({"realm": "app", "token": t}))
        .await;
    assert_eq!(r.json()["status"], "valid");
    assert_eq!(r.json()["session"]["user"], "alice");
    // the text protocol sees the same session
    s.get(&format!("/valid?realm=app&token={t}"))
        .await
        .assert_text(200, "YES\nalice\nauth/file\n\n");

    let r = s
        .post_json("/v1/replace", json!({"realm": "app", "token": t}))
        .await;
    let n = r.json()["token"].as_str().unwrap().to_owned();
    assert_eq!(
        s.post_json("/v1/validate", json!({"realm": "app", "token": t}))
            .await
            .json()["status"],
        "invalid"
    );
    let r = s
        .post_json("/v1/replace", json!({"realm": "app", "token": t}))
        .await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (401, Some("invalid_token"))
    );

    let newer = v1_login(&s).await;
    assert_eq!(
        s.post_json("/v1/validate", json!({"realm": "app", "token": n}))
            .await
            .json()["status"],
        "superseded"
    );
    let r = s
        .post_json("/v1/revoke", json!({"realm": "app", "token": newer}))
        .await;
    assert_eq!(r.json(), json!({"revoked": true}));
    let r = s
        .post_json("/v1/revoke", json!({"realm": "app", "token": newer}))
        .await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (404, Some("invalid_token"))
    );
}

#[tokio::test]
async fn typed_errors() {
    let s = server();
    let r = s
        .post_json(
            "/v1/login",
            json!({"realm": "app", "user": "alice", "password": "nope"}),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (401, Some("authentication_failed"))
    );
    let r = s
        .post_json("/v1/login", json!({"realm": "app", "user": "alice"}))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], "invalid_request");
    assert!(
        r.json()["message"].as_str().unwrap().contains("password"),
        "{r:?}"
    );
    let r = s
        .post_json(
            "/v1/login",
            json!({"realm": "app", "user": "alice", "password": "x", "module": "kerberos5"}),
        )
        .await;
    assert_eq!(r.json()["error"], "unknown_module");
    let r = s
        .post_json(
            "/v1/login",
            json!({"realm": "app", "user": "a\nb", "password": "x"}),
        )
        .await;
    assert_eq!(r.json()["error"], "invalid_request");
    let r = s
        .request(
            "POST",
            "/v1/validate",
            &[("Content-Type", "text/plain")],
            b"realm=app",
        )
        .await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (415, Some("unsupported_media_type"))
    );
    let r = s
        .request(
            "POST",
            "/v1/validate",
            &[("Content-Type", "application/json")],
            b"{not json",
        )
        .await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (400, Some("invalid_request"))
    );
    let r = s.get("/v1/session/data?realm=app").await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (401, Some("missing_token"))
    );
    let big = "x".repeat(100 * 1024);
    let r = s
        .post_json("/v1/validate", json!({"realm": "app", "token": big}))
        .await;
    assert_eq!(r.status, 413, "body limit");
}

#[tokio::test]
async fn session_data_get_put_patch() {
    let s = server();
    let t = v1_login(&s).await;
    let auth = format!("Bearer {t}");
    let h = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
    ];
    let r = s
        .request("GET", "/v1/session/data?realm=app", &h, b"")
        .await;
    assert_eq!(r.json(), json!({"data": {}, "version": 0}));
    let body = json!({"data": {"theme": "dark"}, "version": 0}).to_string();
    let r = s
        .request("PUT", "/v1/session/data?realm=app", &h, body.as_bytes())
        .await;
    assert_eq!(r.json(), json!({"version": 1}));
    let r = s
        .request("PUT", "/v1/session/data?realm=app", &h, body.as_bytes())
        .await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (409, Some("version_conflict"))
    );
    let patch = json!({"set": {"lang": "fr"}, "remove": ["theme"]}).to_string();
    let r = s
        .request("PATCH", "/v1/session/data?realm=app", &h, patch.as_bytes())
        .await;
    assert_eq!(r.json(), json!({"data": {"lang": "fr"}, "version": 2}));
    let huge = json!({"set": {"blob": "y".repeat(40_000)}}).to_string();
    let r = s
        .request("PATCH", "/v1/session/data?realm=app", &h, huge.as_bytes())
        .await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (413, Some("data_too_large"))
    );
    let r = s
        .request("GET", "/v1/session/data?realm=other", &h, b"")
        .await;
    assert_eq!(r.status, 401, "sessions are realm-bound");

    // many concurrent patches of different keys: none is lost
    let mut tasks = Vec::new();
    let s = std::sync::Arc::new(s);
    for i in 0..40 {
        let s = s.clone();
        let auth = auth.clone();
        tasks.push(tokio::spawn(async move {
            let h = [
                ("Authorization", auth.as_str()),
                ("Content-Type", "application/json"),
            ];
            let patch = json!({"set": {format!("k{i}"): i}}).to_string();
            let r = s
                .request("PATCH", "/v1/session/data?realm=app", &h, patch.as_bytes())
                .await;
            assert_eq!(r.status, 200, "{r:?}");
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let r = s
        .request("GET", "/v1/session/data?realm=app", &h, b"")
        .await;
    let data = r.json()["data"].as_object().unwrap().clone();
    assert_eq!(data.len(), 41, "40 keys plus lang");
    assert_eq!(r.json()["version"], 42);
}

#[tokio::test]
async fn health_ready_metrics() {
    let s = server();
    let r = s.get("/healthz").await;
    assert_eq!((r.status, r.text().as_str()), (200, "ok\n"));
    let r = s.get("/readyz").await;
    assert_eq!((r.status, r.text().as_str()), (200, "ready\n"));
    v1_login(&s).await;
    s.get("/auth_token?realm=r&user=alice&pwd=bad").await;
    s.get("/session/whoami").await;
    s.get("/v1/users/rc/alice/sessions").await;
    s.get("/no/such/path?token=secret-in-url").await;
    let m = s.get("/metrics").await.text();
    assert!(m.contains("sessiond_http_requests_total"), "{m}");
    // Labelled with the route each request matched, never the names in it.
    for label in [
        r#"endpoint="/v1/login""#,
        r#"endpoint="/auth_token""#,
        r#"endpoint="/session/whoami""#,
        r#"endpoint="/v1/users/{realm}/{user}/sessions""#,
        r#"endpoint="other""#,
    ] {
        assert!(m.contains(label), "{label} missing: {m}");
    }
    assert!(!m.contains("/no/such/path") && !m.contains("secret-in-url"));
    assert!(
        m.contains(r#"sessiond_logins_total{module="file",result="ok"} 1"#),
        "{m}"
    );
    assert!(
        m.contains(r#"sessiond_logins_total{module="file",result="rejected"} 1"#),
        "{m}"
    );
    assert!(!m.contains("alice-pw"));
}

#[tokio::test]
async fn openapi_document_covers_every_route() {
    let s = server();
    let r = s.get("/v1/openapi.json").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let doc = r.json();
    assert_eq!(doc["openapi"], "3.1.0");
    let routes = [
        ("/v1/login", "post"),
        ("/v1/validate", "post"),
        ("/v1/replace", "post"),
        ("/v1/revoke", "post"),
        ("/v1/session/data", "get"),
        ("/v1/session/data", "put"),
        ("/v1/session/data", "patch"),
        ("/v1/users/{realm}/{user}/sessions", "get"),
        ("/v1/users/{realm}/{user}/sessions", "delete"),
        ("/v1/users/{realm}/{user}/sessions/{id}", "delete"),
        ("/v1/users/{realm}/{user}/tickets", "get"),
        ("/v1/users/{realm}/{user}/tickets", "delete"),
        ("/v1/users/{user}/sessions", "delete"),
        ("/v1/sessions/credentials", "get"),
    ];
    for (path, method) in routes {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} is not documented"
        );
    }
    // and every documented route answers in JSON (not the text protocol's fallback)
    for (path, method) in routes {
        let method = method.to_uppercase();
        let path = path
            .replace("{realm}", "rc")
            .replace("{user}", "alice")
            .replace("{id}", &"0".repeat(64));
        let r = s
            .request(
                &method,
                &path,
                &[("Content-Type", "application/json")],
                b"{}",
            )
            .await;
        let json = r
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/json"));
        assert!(json, "{method} {path}: {r:?}");
    }
    let r = s.request("DELETE", "/v1/login", &[], b"").await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (405, Some("method_not_allowed"))
    );
    let r = s.get("/v1/nothing-here").await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (404, Some("not_found"))
    );
}

/// With one password check at a time, a burst of concurrent logins queues
/// and every one still succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_logins_queue_for_password_checks() {
    let s = std::sync::Arc::new(Server::start(
        Options::default()
            .user("alice", "alice-pw")
            .env("SESSIOND_AUTH__MAX_CONCURRENT_CHECKS", "1"),
    ));
    let mut tasks = Vec::new();
    for i in 0..24 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let body = json!({"realm": format!("q{i}"), "user": "alice", "password": "alice-pw"});
            s.post_json("/v1/login", body).await.status
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
}
