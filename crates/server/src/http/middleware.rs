//! What happens around every request, in one layer ([`pipeline`]): the
//! client's address, the request id and audit context, per-request metrics
//! and logs, and the one place a failed request is logged and counted
//! (whatever surface answered it: the renderers in `error.rs` only attach
//! the failure to the answer). Only a route's path
//! template or a known SessionKeyServer path is ever recorded: query strings
//! carry passwords and tokens, and an unknown path could too.

use crate::http::ClientAddr;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::IntoResponse;
use axum::response::Response;
use hashbrown::HashMap;
use metrics::SharedString;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// The label of a request: the route it matched (a path template such as
/// `/v1/users/{realm}/{user}/sessions`, never the names in it), else a
/// SessionKeyServer path, else `other`.
fn endpoint(req: &Request) -> &str {
    if let Some(matched) = req.extensions().get::<axum::extract::MatchedPath>() {
        return matched.as_str();
    }
    let path = req.uri().path();
    crate::http::sks::PATHS
        .iter()
        .find(|p| **p == path)
        .copied()
        .unwrap_or("other")
}

/// The metric handles of one endpoint, made once and kept. `counter!` and
/// `histogram!` look their key and labels up in the recorder's registry on
/// every call (hashing the name and each label), and the label strings were
/// allocated per request: under load that was a visible share of every
/// request's own work (bench/path.sh).
struct EndpointMetrics {
    name: SharedString,
    seconds: metrics::Histogram,
    /// By status code; a handful per endpoint.
    requests: parking_lot::RwLock<Vec<(u16, metrics::Counter)>>,
}

impl EndpointMetrics {
    fn of(endpoint: &str) -> Arc<EndpointMetrics> {
        // hashbrown's default hasher (foldhash): std's SipHash of the path
        // was most of this lookup's cost
        static ALL: OnceLock<parking_lot::RwLock<HashMap<Box<str>, Arc<EndpointMetrics>>>> =
            OnceLock::new();
        let all = ALL.get_or_init(Default::default);
        if let Some(m) = all.read().get(endpoint) {
            return m.clone();
        }
        let name = SharedString::from(Arc::<str>::from(endpoint));
        all.write()
            .entry(endpoint.into())
            .or_insert_with(|| {
                Arc::new(EndpointMetrics {
                    seconds: metrics::histogram!("sessiond_http_request_seconds", "endpoint" => name.clone()),
                    name,
                    requests: Default::default(),
                })
            })
            .clone()
    }

    fn count(&self, status: u16) {
        if let Some((_, c)) = self.requests.read().iter().find(|(s, _)| *s == status) {
            c.increment(1);
            return;
        }
        let mut requests = self.requests.write();
        if let Some((_, c)) = requests.iter().find(|(s, _)| *s == status) {
            c.increment(1);
            return;
        }
        let c = metrics::counter!("sessiond_http_requests_total", "endpoint" => self.name.clone(), "status" => status.to_string());
        c.increment(1);
        requests.push((status, c));
    }
}

/// A header name parsed once (a `&str` name is parsed on every insert).
const X_REQUEST_ID: header::HeaderName = header::HeaderName::from_static("x-request-id");

/// What [`pipeline`] needs from the configuration.
pub struct Surroundings {
    /// `server.trusted_proxies`.
    pub proxies: Vec<ipnet::IpNet>,
    /// `server.request_timeout`.
    pub timeout: std::time::Duration,
}

/// Everything sessiond does around each request, in one pass. One layer,
/// not the five it was (a tower layer per concern): each layer moves the
/// request and boxes or wraps a future per request, and together they
/// were a measured share of a request's whole cost (bench/path.sh,
/// docs/performance.md).
///
/// 1. the client's address: the one a trusted proxy forwarded
///    ([`resolve_client`]);
/// 2. a request id (the answer's `x-request-id`) and, with the address, the
///    context of audit events ([`crate::audit::REQUEST`]);
/// 3. `server.request_timeout`: past it the request is dropped and
///    answered `408`;
/// 4. metrics and the debug log line (timed-out requests included), and
///    the one place a failed request is logged and counted
///    ([`crate::http::error::Failed`]);
/// 5. `Cache-Control: no-store` unless the handler set one: answers carry
///    tokens, keys, identities and session state, and no cache (a
///    browser's, a proxy's) may keep one unless a handler says so (the
///    static script); and the `server` header.
///
/// The body-size limit stays a tower layer outside it
/// (`RequestBodyLimitLayer`): it has to wrap the body before anything
/// reads it.
pub async fn pipeline(
    axum::extract::State(around): axum::extract::State<Arc<Surroundings>>,
    mut req: Request,
    next: Next,
) -> Response {
    resolve_client(&around.proxies, &mut req);
    let metrics = EndpointMetrics::of(endpoint(&req));
    let method = req.method().clone();
    let started = Instant::now();
    let context = crate::audit::RequestContext {
        id: crate::audit::RequestId::next(),
        client: req.extensions().get::<ClientAddr>().map(|a| a.client),
    };
    let answered = tokio::time::timeout(
        around.timeout,
        crate::audit::REQUEST.scope(context, next.run(req)),
    )
    .await;
    let mut response = answered.unwrap_or_else(|_| StatusCode::REQUEST_TIMEOUT.into_response());
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    if let Some(crate::http::error::Failed(e)) = response.extensions().get() {
        e.report(&metrics.name);
    }
    metrics.count(status);
    metrics.seconds.record(elapsed.as_secs_f64());
    tracing::debug!(%method, endpoint = &*metrics.name, status, micros = elapsed.as_micros() as u64, "request");
    let headers = response.headers_mut();
    // up to three more: one growth of the map, not one per insert
    headers.reserve(3);
    headers.insert(
        X_REQUEST_ID,
        HeaderValue::from_bytes(&context.id.hex()).expect("hex is a header value"),
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    headers.insert(
        header::SERVER,
        HeaderValue::from_static(concat!("sessiond/", env!("CARGO_PKG_VERSION"))),
    );
    response
}

/// A proxy on this host forwards client addresses, but none is trusted: every
/// client then shares the proxy's address, so the per-address login limit
/// blocks them all together. Said once, at the first such request.
fn warn_untrusted_proxy_once() {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        tracing::warn!(
            "X-Forwarded-For arrives from a loopback peer but server.trusted_proxies is empty: \
             all clients behind that proxy share one address for login limits; \
             set server.trusted_proxies = [\"127.0.0.1/32\"] if the proxy is yours"
        );
    }
}

/// Replaces the client address with the one a trusted proxy forwarded: the
/// right-most `X-Forwarded-For` entry that is not itself a trusted proxy (the
/// entries to its left were written by the client and prove nothing).
fn resolve_client(proxies: &[ipnet::IpNet], req: &mut Request) {
    let trusted = |ip: &std::net::IpAddr| proxies.iter().any(|net| net.contains(ip));
    let forwarded = req
        .extensions()
        .get::<ClientAddr>()
        .copied()
        .and_then(|addr| {
            let values = req
                .headers()
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok());
            if !trusted(&addr.peer.ip()) {
                if proxies.is_empty()
                    && addr.peer.ip().is_loopback()
                    && req.headers().contains_key("x-forwarded-for")
                {
                    warn_untrusted_proxy_once();
                }
                return None;
            }
            let client = sessiond_core::forwarded::forwarded_client(values, trusted)?;
            Some(ClientAddr { client, ..addr })
        });
    if let Some(addr) = forwarded {
        req.extensions_mut().insert(addr);
    }
}
