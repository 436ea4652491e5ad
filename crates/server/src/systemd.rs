//! systemd: readiness, reload and stop notifications and the watchdog
//! (`sd_notify`, through the `sd-notify` crate), and socket activation
//! (`LISTEN_FDS`, through `listenfd`). Everything here is a no-op when the
//! process was not started by systemd (no `NOTIFY_SOCKET`, no `LISTEN_FDS`),
//! so the same binary runs anywhere.

use anyhow::Context;
use sd_notify::NotifyState;
use std::time::Duration;

/// A listening socket systemd passed (a `.socket` unit, or
/// `systemd-socket-activate`), if any: the first one, which must be TCP.
pub fn activated_listener() -> anyhow::Result<Option<tokio::net::TcpListener>> {
    let mut fds = listenfd::ListenFd::from_env();
    if fds.len() == 0 {
        return Ok(None);
    }
    let listener = fds
        .take_tcp_listener(0)
        .context("socket activation: the first passed file descriptor")?
        .context("socket activation: the first passed file descriptor is not a TCP listener")?;
    listener
        .set_nonblocking(true)
        .context("socket activation: cannot make the socket non-blocking")?;
    Ok(Some(tokio::net::TcpListener::from_std(listener)?))
}

fn notify(states: &[NotifyState<'_>]) {
    // Not started by systemd: nothing to tell. A manager that stopped
    // listening is not a reason to stop serving.
    if let Err(e) = sd_notify::notify(false, states) {
        tracing::debug!(error = %e, "sd_notify failed");
    }
}

/// Started and listening (`READY=1`), with a status line for `systemctl status`.
pub fn ready(status: &str) {
    notify(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// A reload (`SIGHUP`) began; call [`ready`] when it is over.
pub fn reloading() {
    notify(&[NotifyState::Reloading]);
}

/// Shutting down: no new connections, requests in flight finish.
pub fn stopping() {
    notify(&[NotifyState::Stopping]);
}

/// Pings the watchdog at half its interval while the runtime serves
/// (`WatchdogSec=` in the unit): a process whose executor is stuck stops
/// pinging and systemd restarts it.
pub fn spawn_watchdog() -> Option<tokio::task::JoinHandle<()>> {
    let mut usec = 0;
    if !sd_notify::watchdog_enabled(false, &mut usec) || usec == 0 {
        return None;
    }
    let every = Duration::from_micros(usec / 2);
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            notify(&[NotifyState::Watchdog]);
        }
    }))
}
