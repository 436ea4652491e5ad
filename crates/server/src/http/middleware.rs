//! Per-request metrics and logs, and the one place a failed request is
//! logged and counted (whatever surface answered it: the renderers in
//! `error.rs` only attach the failure to the answer). Only a route's path
//! template or a known SessionKeyServer path is ever recorded: query strings
//! carry passwords and tokens, and an unknown path could too.

use crate::http::ClientAddr;
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use metrics::SharedString;
use std::time::Instant;

/// The label of a request: the route it matched (a path template such as
/// `/v1/users/{realm}/{user}/sessions`, never the names in it), else a
/// SessionKeyServer path, else `other`. Shared (`Arc`), so the two metrics
/// and the log line reuse one copy of a matched route.
fn endpoint(req: &Request) -> SharedString {
    if let Some(matched) = req.extensions().get::<axum::extract::MatchedPath>() {
        return SharedString::from(std::sync::Arc::<str>::from(matched.as_str()));
    }
    let path = req.uri().path();
    SharedString::const_str(
        crate::http::sks::PATHS
            .iter()
            .find(|p| **p == path)
            .copied()
            .unwrap_or("other"),
    )
}

pub async fn observe(req: Request, next: Next) -> Response {
    let endpoint = endpoint(&req);
    let method = req.method().clone();
    let started = Instant::now();
    let mut response = next.run(req).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    if let Some(crate::http::error::Failed(e)) = response.extensions().get() {
        e.report(&endpoint);
    }
    metrics::counter!("sessiond_http_requests_total", "endpoint" => endpoint.clone(), "status" => status.to_string())
        .increment(1);
    metrics::histogram!("sessiond_http_request_seconds", "endpoint" => endpoint.clone())
        .record(elapsed.as_secs_f64());
    tracing::debug!(%method, endpoint = &*endpoint, status, micros = elapsed.as_micros() as u64, "request");
    response.headers_mut().insert(
        "server",
        HeaderValue::from_static(concat!("sessiond/", env!("CARGO_PKG_VERSION"))),
    );
    response
}

/// A request id unique across processes without a random read per request
/// (this is every request's path): 8 random hex digits chosen once per
/// process, then a counter.
fn request_id() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static PREFIX: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let prefix = PREFIX.get_or_init(|| sessiond_core::token::random_hex(4));
    format!("{prefix}{:08x}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Gives the request an id (the answer's `x-request-id`) and makes it and
/// the client's address the context of audit events
/// ([`crate::audit::REQUEST`]). Inside `resolve_client`, so the address is
/// the one a trusted proxy forwarded.
pub async fn request_context(req: Request, next: Next) -> Response {
    let context = crate::audit::RequestContext {
        id: request_id(),
        client: req.extensions().get::<ClientAddr>().map(|a| a.client),
    };
    let id = HeaderValue::from_str(&context.id).expect("hex is a header value");
    let mut response = crate::audit::REQUEST.scope(context, next.run(req)).await;
    response.headers_mut().insert("x-request-id", id);
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
pub async fn resolve_client(
    axum::extract::State(proxies): axum::extract::State<std::sync::Arc<Vec<ipnet::IpNet>>>,
    mut req: Request,
    next: Next,
) -> Response {
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
    next.run(req).await
}
