//! The HTTP surface: SessionKeyServer's text protocol, the `/v1` JSON API and
//! the operational endpoints, assembled into one router.

pub mod admin;
pub mod api_v1;
pub mod browser;
pub mod credentials;
pub mod middleware;
pub mod negotiate;
pub mod ops;
pub mod params;
pub mod sks;
pub mod tickets;

use crate::app::App;
use axum::routing::{get, post};
use axum::Router;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// Who is on the other end: the TCP peer (added by the accept loop) and the
/// client it speaks for (the peer itself, or the address a trusted proxy
/// reported in `X-Forwarded-For`).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr {
    pub peer: SocketAddr,
    pub client: IpAddr,
}

impl ClientAddr {
    pub fn direct(peer: SocketAddr) -> ClientAddr {
        ClientAddr {
            peer,
            client: peer.ip(),
        }
    }

    pub fn ip(&self) -> IpAddr {
        self.client
    }
}

pub fn router(app: Arc<App>) -> Router {
    let timeout = app.config.server.request_timeout.0;
    let max_body = app.config.server.max_body_bytes;
    let proxies = std::sync::Arc::new(app.trusted_proxies.clone());
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/v1/openapi.json", get(api_v1::openapi))
        .route("/v1/login", post(api_v1::login))
        .route("/v1/validate", post(api_v1::validate))
        .route("/v1/revoke", post(api_v1::revoke))
        .route("/v1/replace", post(api_v1::replace))
        .route(
            "/v1/session/data",
            get(api_v1::get_data)
                .put(api_v1::put_data)
                .patch(api_v1::patch_data),
        )
        .route("/session/login_password", post(browser::login_password))
        .route("/session/logout", post(browser::logout))
        .route("/session/whoami", get(browser::whoami))
        .route("/session/login_kerberos", get(browser::login_kerberos))
        .route("/v1/sessions/credentials", get(credentials::fetch))
        .route("/auth", get(browser::forward_auth))
        .route("/login", get(browser::login_page))
        .route("/static/sessiond.js", get(browser::script))
        .route("/session/sessions", get(browser::sessions_page))
        .route("/session/sessions/end", post(browser::end_session))
        .route(
            "/session/sessions/end_others",
            post(browser::end_other_sessions),
        )
        .route(
            "/v1/users/{realm}/{user}/sessions",
            get(admin::list).delete(admin::revoke_all),
        )
        .route(
            "/v1/users/{user}/sessions",
            axum::routing::delete(admin::end_user),
        )
        .route("/ticket/refresh", get(tickets::refresh))
        .route("/ticket/remove", get(tickets::remove))
        .route(
            "/v1/users/{realm}/{user}/tickets",
            get(tickets::not_before).delete(tickets::revoke),
        )
        .route(
            "/v1/users/{realm}/{user}/sessions/{id}",
            axum::routing::delete(admin::revoke_one),
        )
        // applies to the routes above, so it must come after them
        .method_not_allowed_fallback(api_v1::method_not_allowed)
        .fallback(sks::handle)
        .with_state(app)
        // Answers carry tokens, keys, identities and session state: no cache
        // (a browser's, a proxy's) may keep one unless a handler says so
        // (the static script).
        .layer(
            tower_http::set_header::SetResponseHeaderLayer::if_not_present(
                axum::http::header::CACHE_CONTROL,
                axum::http::HeaderValue::from_static("no-store"),
            ),
        )
        .layer(axum::middleware::from_fn_with_state(
            proxies,
            middleware::resolve_client,
        ))
        .layer(axum::middleware::from_fn(middleware::observe))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(max_body))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
}

/// The bearer credential of an `Authorization` header, if any: the admin
/// credential for the text protocol, the session token for `/v1`.
pub fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}
