//! The server as a library: the router built from a configuration and driven
//! in-process, without a socket or a child process — for tests that need to
//! reach inside (the black-box tests beside this one run the binary).

use axum::body::Body;
use axum::http::{Request, StatusCode};
use sessiond_server::app::App;
use sessiond_server::config::Config;
use std::sync::Arc;
use tower::ServiceExt;

async fn body_text(r: axum::response::Response) -> String {
    let bytes = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[tokio::test]
async fn router_in_process() {
    let dir = tempfile::tempdir().unwrap();
    let passwd = dir.path().join("passwd");
    sessiond_auth::password_file::add_user(
        &passwd,
        "alice",
        &sessiond_auth::Password::new("alice-pw"),
        &[],
    )
    .unwrap();
    let mut config = Config::default();
    config.auth.password_file = passwd;
    config.validate().unwrap();
    let app = Arc::new(App::build(config, None).await.unwrap());
    let router = sessiond_server::http::router(app);

    let call = |uri: &str| {
        let router = router.clone();
        let request = Request::get(uri).body(Body::empty()).unwrap();
        async move { router.oneshot(request).await.unwrap() }
    };
    let r = call("/healthz").await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = call("/auth_token?realm=rc&user=alice&pwd=alice-pw").await;
    assert_eq!(r.status(), StatusCode::OK);
    let token = body_text(r).await.lines().next().unwrap().to_owned();
    let r = call(&format!("/valid?realm=rc&token={token}")).await;
    assert_eq!(body_text(r).await, "YES\nalice\nauth/file\n\n");
}
