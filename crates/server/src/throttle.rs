//! Failed-login throttling (exponential back-off per account and per client
//! network, in the process or in a shared store), one password check per
//! account at a time, and the bounded pool of password checks. Used by
//! `login.rs`; owned by the `App`.

use crate::clock::now;
use crate::config::AuthConfig;
use parking_lot::Mutex;
use sessiond_core::limiter::{account_key, address_key, Backoff, FailureTable};
use sessiond_store::{FailureCounters, StoreError};
use std::net::IpAddr;
use std::sync::Arc;

/// Why a login may not be checked now.
#[derive(Debug, thiserror::Error)]
pub enum Throttled {
    /// Too many recent failures of the account or the client network.
    #[error("too many failed logins {scope}; retry in {retry_after} s")]
    Limited {
        scope: &'static str,
        retry_after: u64,
    },
    /// The shared store holding the counts cannot answer.
    #[error("session store unavailable")]
    Store(#[from] StoreError),
}

/// Failed-login throttling per account (realm and user name) and per
/// client network, with exponential back-off (`sessiond_core::limiter`).
/// With a shared store the records live there, so every instance enforces
/// the same limit; otherwise in this process.
pub struct LoginGuard {
    accounts: Backoff,
    addresses: Backoff,
    /// Records when the store keeps none.
    local: Mutex<FailureTable>,
    /// The store's shared records, if it keeps them.
    shared: Option<Arc<dyn FailureCounters>>,
    /// Bounds the password checks running at once. A check holds its permit
    /// until the authenticator returns, even if the request gave up waiting
    /// for it: a PAM or Kerberos call on a blocking thread cannot be
    /// cancelled, and freeing its slot early would let a slow back end pile
    /// up unbounded work.
    pub(crate) checks: Arc<tokio::sync::Semaphore>,
    /// One lock per account with a password check running or waiting in
    /// this process.
    in_flight: InFlight,
}

type InFlight = Arc<Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>>>;

/// An account's turn for its one running check; the next waiting login of
/// the account goes on when it is dropped.
pub struct Claim {
    key: String,
    turn: Option<tokio::sync::OwnedMutexGuard<()>>,
    lock: Arc<tokio::sync::Mutex<()>>,
    in_flight: InFlight,
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.turn.take();
        let mut map = self.in_flight.lock();
        // Only the map and this claim hold the lock: nobody waits, forget it.
        if Arc::strong_count(&self.lock) == 2 {
            map.remove(&self.key);
        }
    }
}

/// Which key a throttle answer is about.
#[derive(Clone, Copy)]
enum Scope {
    Address,
    Account,
}

impl LoginGuard {
    pub fn new(cfg: &AuthConfig, shared: Option<Arc<dyn FailureCounters>>) -> LoginGuard {
        let accounts = Backoff {
            free_failures: cfg.max_failures_per_user,
            window: cfg.failure_window.0,
        };
        let addresses = Backoff {
            free_failures: cfg.max_failures_per_address,
            window: cfg.failure_window.0,
        };
        LoginGuard {
            accounts,
            addresses,
            local: Mutex::new(FailureTable::new()),
            shared,
            checks: Arc::new(tokio::sync::Semaphore::new(cfg.max_concurrent_checks)),
            in_flight: Arc::default(),
        }
    }

    /// Waits for the account's turn: one password check per account at a
    /// time in this process, so each failure is counted before the next
    /// guess is checked against the back-off.
    pub(crate) async fn claim(&self, realm: &str, user: &str) -> Claim {
        let key = account_key(realm, user);
        let lock = self
            .in_flight
            .lock()
            .entry(key.clone())
            .or_default()
            .clone();
        let turn = lock.clone().lock_owned().await;
        Claim {
            key,
            turn: Some(turn),
            lock,
            in_flight: self.in_flight.clone(),
        }
    }

    fn keys(realm: &str, user: &str, addr: Option<IpAddr>) -> Vec<(Scope, String)> {
        let mut keys = Vec::with_capacity(2);
        if let Some(a) = addr {
            keys.push((Scope::Address, address_key(a)));
        }
        keys.push((Scope::Account, account_key(realm, user)));
        keys
    }

    fn backoff(&self, scope: Scope) -> &Backoff {
        match scope {
            Scope::Address => &self.addresses,
            Scope::Account => &self.accounts,
        }
    }

    pub(crate) async fn check(
        &self,
        realm: &str,
        user: &str,
        addr: Option<IpAddr>,
    ) -> Result<(), Throttled> {
        let t = now();
        for (scope, key) in Self::keys(realm, user, addr) {
            let backoff = self.backoff(scope);
            if !backoff.enabled() {
                continue;
            }
            let record = match &self.shared {
                Some(shared) => shared.failures(&key).await?,
                None => self.local.lock().get(&key),
            };
            let wait = record.and_then(|f| backoff.wait(f, t));
            if let Some(retry_after) = wait {
                metrics::counter!("sessiond_logins_throttled_total", "scope" => match scope {
                    Scope::Address => "address",
                    Scope::Account => "account",
                })
                .increment(1);
                return Err(Throttled::Limited {
                    scope: match scope {
                        Scope::Address => "from this address",
                        Scope::Account => "for this user",
                    },
                    retry_after,
                });
            }
        }
        Ok(())
    }

    pub(crate) async fn failed(&self, realm: &str, user: &str, addr: Option<IpAddr>) {
        let t = now();
        for (scope, key) in Self::keys(realm, user, addr) {
            let backoff = self.backoff(scope);
            if !backoff.enabled() {
                continue;
            }
            match &self.shared {
                Some(shared) => {
                    if let Err(e) = shared.record_failure(&key, backoff, t).await {
                        metrics::counter!("sessiond_store_errors_total", "op" => "record_failure")
                            .increment(1);
                        tracing::error!(error = %e, "cannot count a failed login in the store");
                    }
                }
                None => {
                    self.local.lock().record_failure(&key, backoff, t);
                }
            }
        }
    }

    /// A success clears the account's failures (not the address's: one
    /// right password must not hide a network's guessing).
    pub(crate) async fn succeeded(&self, realm: &str, user: &str) {
        let key = account_key(realm, user);
        match &self.shared {
            Some(shared) => {
                if let Err(e) = shared.clear_failures(&key).await {
                    tracing::error!(error = %e, "cannot clear an account's failed logins in the store");
                }
            }
            None => self.local.lock().clear(&key),
        }
    }

    /// Drops stale records; called by the sweeper.
    pub fn prune(&self) {
        let window = self.accounts.window.max(self.addresses.window);
        self.local.lock().prune(now(), window);
    }
}
