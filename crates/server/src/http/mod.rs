//! The HTTP surface: SessionKeyServer's text protocol, the `/v1` JSON API,
//! the browser routes and the operational endpoints, assembled into one
//! router from one route table. Every surface shares the same pipeline:
//! extractors read credentials (`extract.rs`), one step checks sessions
//! (`check.rs`), one error model answers failures (`error.rs`), and the
//! middleware logs and counts them (`middleware.rs`).

pub mod admin;
pub mod api_v1;
pub mod browser;
pub mod check;
pub mod credentials;
pub mod error;
pub mod extract;
pub mod middleware;
pub mod negotiate;
pub mod ops;
pub mod params;
pub mod sks;
pub mod tickets;
pub mod view;

use crate::app::App;
use axum::routing::{delete, get, post, MethodRouter};
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

/// The routed endpoints, each path once, in one table: the router is built
/// from it, metrics are labelled with its paths (`MatchedPath`), and a test
/// checks every `/v1` path in it against `docs/openapi.json`. What no route
/// matches goes to the SessionKeyServer text protocol, whose paths are
/// `sks::PATHS`.
pub struct Routes {
    router: Router<Arc<App>>,
    paths: Vec<&'static str>,
}

impl Routes {
    fn add(mut self, path: &'static str, methods: MethodRouter<Arc<App>>) -> Routes {
        self.paths.push(path);
        self.router = self.router.route(path, methods);
        self
    }

    /// A browser route: failures are answered as pages to browsers
    /// (`browser::render_failures`), as JSON to scripts.
    fn page(self, path: &'static str, methods: MethodRouter<Arc<App>>) -> Routes {
        self.add(
            path,
            methods.layer(axum::middleware::from_fn(browser::render_failures)),
        )
    }

    /// Every routed path.
    #[cfg(test)]
    pub fn paths(&self) -> &[&'static str] {
        &self.paths
    }
}

pub fn routes() -> Routes {
    Routes {
        router: Router::new(),
        paths: Vec::new(),
    }
    .add("/healthz", get(ops::healthz))
    .add("/readyz", get(ops::readyz))
    .add("/metrics", get(ops::metrics))
    .add("/v1/openapi.json", get(api_v1::openapi))
    .add("/v1/login", post(api_v1::login))
    .add("/v1/validate", post(api_v1::validate))
    .add("/v1/revoke", post(api_v1::revoke))
    .add("/v1/replace", post(api_v1::replace))
    .add(
        "/v1/session/data",
        get(api_v1::get_data)
            .put(api_v1::put_data)
            .patch(api_v1::patch_data),
    )
    .add("/v1/sessions/credentials", get(credentials::fetch))
    .add(
        "/v1/users/{realm}/{user}/sessions",
        get(admin::list).delete(admin::revoke_all),
    )
    .add(
        "/v1/users/{realm}/{user}/sessions/{id}",
        delete(admin::revoke_one),
    )
    .add(
        "/v1/users/{realm}/{user}/tickets",
        get(admin::ticket_not_before).delete(admin::revoke_tickets),
    )
    .add("/v1/users/{user}/sessions", delete(admin::end_user))
    .page("/session/login_password", post(browser::login_password))
    .page("/session/logout", post(browser::logout))
    .page("/session/whoami", get(browser::whoami))
    .page("/session/login_kerberos", get(browser::login_kerberos))
    .page("/session/sessions", get(browser::sessions_page))
    .page("/session/sessions/end", post(browser::end_session))
    .page(
        "/session/sessions/end_others",
        post(browser::end_other_sessions),
    )
    .page("/auth", get(browser::forward_auth))
    .add("/login", get(browser::login_page))
    .add("/static/sessiond.js", get(browser::script))
    .add("/ticket/refresh", get(tickets::refresh))
    .add("/ticket/remove", get(tickets::remove))
}

pub fn router(app: Arc<App>) -> Router {
    let timeout = app.config.server.request_timeout.0;
    let max_body = app.config.server.max_body_bytes;
    let app_proxies = app.trusted_proxies.clone();
    routes()
        .router
        // applies to the routes above, so it must come after them
        .method_not_allowed_fallback(api_v1::method_not_allowed)
        .fallback(sks::handle)
        .with_state(app)
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(middleware::Surroundings {
                proxies: app_proxies,
                timeout,
            }),
            middleware::pipeline,
        ))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(max_body))
}

#[cfg(test)]
mod tests {
    /// Every `/v1` route is documented, and every documented path is routed:
    /// the OpenAPI document cannot drift from the router.
    #[test]
    fn openapi_documents_exactly_the_v1_routes() {
        let doc: serde_json::Value =
            serde_json::from_str(include_str!("../../../../docs/openapi.json")).unwrap();
        let documented: std::collections::BTreeSet<&str> = doc["paths"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let routes = super::routes();
        let routed: std::collections::BTreeSet<&str> = routes
            .paths()
            .iter()
            .copied()
            .filter(|p| p.starts_with("/v1/"))
            .collect();
        assert_eq!(routed, documented);
    }

    #[test]
    fn each_path_is_routed_once() {
        let routes = super::routes();
        let mut paths = routes.paths().to_vec();
        paths.sort_unstable();
        paths.dedup();
        assert_eq!(paths.len(), routes.paths().len());
    }
}
