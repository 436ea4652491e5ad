//! The benchmarks' yardstick (`bench/path.sh`): a bare axum 0.8 server that
//! answers `GET /healthz` with a constant, as sessiond's own `/healthz` does
//! — same HTTP stack, same TCP_NODELAY, none of sessiond's middleware. What
//! sessiond does per request is measured as a fraction of what this does.
//!
//!   bench-baseline [ADDR]     (default 127.0.0.1:0; prints `listening on http://…`)

use axum::http::header;
use axum::routing::get;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    let app = axum::Router::new().route(
        "/healthz",
        get(|| async { ([(header::CONTENT_TYPE, "text/plain")], "ok\n") }),
    );
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await
}
