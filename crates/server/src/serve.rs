//! Accepting connections: plain TCP or TLS, HTTP/1.1 keep-alive, TCP_NODELAY
//! (the original's missing NODELAY cost ~40 ms per keep-alive response), a
//! header read timeout, graceful shutdown on SIGTERM/SIGINT, and the
//! background sweep of expired sessions.

use crate::app::App;
use crate::clock::now;
use crate::config::Config;
use crate::http::{self, ClientAddr};
use arc_swap::ArcSwap;
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

/// Reads the configuration again (file, environment, the start's flags) and
/// checks it, for a reload.
pub type Reloader = Box<dyn Fn() -> anyhow::Result<Config> + Send + Sync>;

pub async fn run(
    app: Arc<App>,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    mut shutdown: ShutdownSignal,
    reload: Reloader,
) -> anyhow::Result<()> {
    // The TLS acceptor a reload replaces (a new certificate and key):
    // connections accepted after the swap get the new one, open ones keep
    // theirs.
    let tls = tls.map(|t| Arc::new(ArcSwap::from_pointee(t)));
    let router = http::router(app.clone());
    let graceful = GracefulShutdown::new();
    let sweeper = tokio::spawn(sweep(app.clone()));
    #[cfg(unix)]
    let hangup = shutdown.hangup.take();
    #[cfg(not(unix))]
    let hangup = None;
    let hangups = tokio::spawn(on_hangup(app.clone(), hangup, reload, tls.clone()));
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
        let tls = tls.as_ref().map(|t| t.load_full());
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
    /// SIGHUP (reload), installed at the same moment for the same reason:
    /// its default action would end the process.
    #[cfg(unix)]
    hangup: Option<tokio::signal::unix::Signal>,
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
                hangup: Some(
                    signal(SignalKind::hangup())
                        .map_err(|e| anyhow::anyhow!("cannot install the SIGHUP handler: {e}"))?,
                ),
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

/// SIGHUP: reopen the audit file (logrotate moved it away) and reload the
/// configuration. Installed with the server: without a handler SIGHUP would
/// end the process.
async fn on_hangup(
    app: Arc<App>,
    hangup: Option<HangupSignal>,
    reload: Reloader,
    tls: Option<Arc<ArcSwap<TlsAcceptor>>>,
) {
    #[cfg(unix)]
    {
        let Some(mut hup) = hangup else { return };
        while hup.recv().await.is_some() {
            crate::systemd::reloading();
            app.audit.reopen();
            match reload_once(&app, &reload, tls.as_deref()) {
                Ok(restart) => {
                    metrics::counter!("sessiond_config_reloads_total", "result" => "ok")
                        .increment(1);
                    metrics::gauge!("sessiond_config_last_reload_success_timestamp_seconds")
                        .set(now().0 as f64);
                    tracing::info!("configuration reloaded (ticket realms, credential keys, admin and back-end credentials, TLS certificate, realm policies, access rules, LDAP settings)");
                    if !restart.is_empty() {
                        tracing::warn!(settings = ?restart, "these settings changed but take effect only after a restart");
                    }
                }
                Err(e) => {
                    metrics::counter!("sessiond_config_reloads_total", "result" => "refused")
                        .increment(1);
                    tracing::error!(error = %format!("{e:#}"), "reload refused: the running configuration stays in force");
                }
            }
            crate::systemd::ready("reloaded");
        }
    }
    #[cfg(not(unix))]
    let _ = (app, hangup, reload, tls);
}

#[cfg(unix)]
type HangupSignal = tokio::signal::unix::Signal;
#[cfg(not(unix))]
type HangupSignal = ();

/// One reload: the whole new configuration is read and checked, the new TLS
/// acceptor and the reloadable state built, and only then swapped in — a
/// failure anywhere leaves everything as it was.
fn reload_once(
    app: &App,
    reload: &Reloader,
    tls: Option<&ArcSwap<TlsAcceptor>>,
) -> anyhow::Result<Vec<&'static str>> {
    let config = reload()?;
    let mut restart = Vec::new();
    let acceptor = match (tls, &config.server.tls_cert) {
        (Some(_), Some(cert)) => Some(TlsAcceptor::from(crate::tls::server_config(
            cert,
            config.server.tls_key.as_deref(),
        )?)),
        (None, None) => None,
        _ => {
            restart.push("server.tls_cert (TLS on or off)");
            None
        }
    };
    restart.extend(app.reload(&config)?);
    if let (Some(slot), Some(acceptor)) = (tls, acceptor) {
        slot.store(Arc::new(acceptor));
    }
    Ok(restart)
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
