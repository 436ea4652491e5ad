//! Accepting connections: plain TCP or TLS, HTTP/1.1 keep-alive, TCP_NODELAY
//! (the original's missing NODELAY cost ~40 ms per keep-alive response), a
//! header read timeout, graceful shutdown on SIGTERM/SIGINT, and the
//! background sweep of expired sessions.

use crate::app::App;
use crate::clock::now;
use crate::http::{self, ClientAddr};
use hyper::body::Incoming;
use hyper::Request;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// Time a client gets to send a request's headers, and a TLS handshake to finish.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn run(
    app: Arc<App>,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    shutdown: ShutdownSignal,
) -> anyhow::Result<()> {
    let router = http::router(app.clone());
    let graceful = GracefulShutdown::new();
    let sweeper = tokio::spawn(sweep(app.clone()));
    let hangups = tokio::spawn(on_hangup(app.clone()));
    let watchdog = crate::systemd::spawn_watchdog();
    let password_watch = tokio::spawn(crate::accounts::watch_password_file(app.clone()));
    let mut shutdown = std::pin::pin!(shutdown.received());
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(v) => v,
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = router
            .clone()
            .map_request(move |mut req: Request<Incoming>| {
                req.extensions_mut().insert(ClientAddr::direct(peer));
                req
            });
        let service = TowerToHyperService::new(service);
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT)
            .keep_alive(true);
        let watcher = graceful.watcher();
        let tls = tls.clone();
        tokio::spawn(async move {
            let result = match tls {
                None => {
                    watcher
                        .watch(builder.serve_connection(TokioIo::new(stream), service))
                        .await
                }
                Some(acceptor) => {
                    let stream =
                        match tokio::time::timeout(HEADER_TIMEOUT, acceptor.accept(stream)).await {
                            Ok(Ok(s)) => s,
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                                return;
                            }
                            Err(_) => return,
                        };
                    watcher
                        .watch(builder.serve_connection(TokioIo::new(stream), service))
                        .await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    tracing::info!("shutting down: no new connections, finishing requests in flight");
    crate::systemd::stopping();
    if let Some(w) = watchdog {
        w.abort();
    }
    sweeper.abort();
    hangups.abort();
    password_watch.abort();
    if tokio::time::timeout(Duration::from_secs(10), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("some connections were still open after 10 s; closing them");
    }
    Ok(())
}

/// SIGTERM and SIGINT handlers, installed *before* the server announces that
/// it listens: a handler installed lazily on the accept loop's first poll
/// left a window where a supervisor's SIGTERM killed the process outright.
pub struct ShutdownSignal {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
}

impl ShutdownSignal {
    /// Must run inside the runtime.
    pub fn install() -> anyhow::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Self {
                term: signal(SignalKind::terminate())
                    .map_err(|e| anyhow::anyhow!("cannot install the SIGTERM handler: {e}"))?,
                interrupt: signal(SignalKind::interrupt())
                    .map_err(|e| anyhow::anyhow!("cannot install the SIGINT handler: {e}"))?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    async fn received(mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.term.recv() => {},
            _ = self.interrupt.recv() => {},
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// SIGHUP: reopen the audit file (logrotate moved it away). Installed with
/// the server: without a handler SIGHUP would end the process.
async fn on_hangup(app: Arc<App>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot install the SIGHUP handler");
            return;
        };
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: reopening the audit file");
            crate::systemd::reloading();
            app.audit.reopen();
            crate::systemd::ready("reloaded");
        }
    }
    #[cfg(not(unix))]
    let _ = app;
}

/// Purges expired and long-superseded sessions, and old failure counters.
async fn sweep(app: Arc<App>) {
    let mut tick = tokio::time::interval(app.config.store.sweep_interval.0);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        app.guard.prune();
        match app.store.purge(now()).await {
            Ok(0) => {}
            Ok(n) => {
                metrics::counter!("sessiond_sessions_purged_total").increment(n);
                tracing::info!(purged = n, "expired sessions purged");
            }
            Err(e) => {
                metrics::counter!("sessiond_store_errors_total", "op" => "purge").increment(1);
                tracing::warn!(error = %e, "purge failed; will retry");
            }
        }
    }
}
