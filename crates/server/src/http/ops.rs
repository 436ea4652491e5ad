//! Operational endpoints: liveness, readiness (store reachable), metrics.

use super::error::Error;
use crate::app::App;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

pub async fn healthz() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain")],
        "ok\n",
    )
        .into_response()
}

pub async fn readyz(State(app): State<Arc<App>>) -> Response {
    match app.store.ping().await {
        Ok(()) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain")],
            "ready\n",
        )
            .into_response(),
        Err(e) => {
            // The reason goes to the log only: it names hosts, ports and
            // sometimes users of the back end, and /readyz answers anyone.
            metrics::counter!("sessiond_store_errors_total", "op" => "ping").increment(1);
            tracing::warn!(error = %e, "not ready: the session store is unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::CONTENT_TYPE, "text/plain")],
                "not ready: the session store is unreachable\n",
            )
                .into_response()
        }
    }
}

pub async fn metrics(State(app): State<Arc<App>>) -> Result<Response, Error> {
    let handle = app.metrics.as_ref().ok_or(Error::NotConfigured(
        "metrics are not recorded in this process",
    ))?;
    if let Some(cache) = &app.store.near_cache {
        // Counted in the store crate (which records no metrics), copied
        // here when asked.
        let stats = cache.stats();
        for (result, n) in [("hit", stats.hits), ("miss", stats.misses)] {
            metrics::counter!("sessiond_near_cache_checks_total", "result" => result).absolute(n);
        }
        metrics::counter!("sessiond_near_cache_losses_total").absolute(stats.losses);
        metrics::gauge!("sessiond_near_cache_live").set(if stats.live { 1.0 } else { 0.0 });
        metrics::gauge!("sessiond_near_cache_entries").set(stats.entries as f64);
    }
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle.render(),
    )
        .into_response())
}
