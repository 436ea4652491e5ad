//! Logging a user in: pick the module, apply the failure limits, run the
//! authenticator, issue the session. Shared by the text protocol and `/v1`.

use crate::app::{now, App};
use crate::config::AuthConfig;
use parking_lot::Mutex;
use sessiond_auth::{AuthError, Password, Refusal};
use sessiond_core::limiter::{account_key, address_key, Backoff, FailureTable};
use sessiond_core::names::{check_name, check_text};
use sessiond_core::session::SessionRecord;
use sessiond_core::{Identity, NewSession, RealmPolicy, Token};
use sessiond_store::{SessionStore, StoreError};
use std::net::IpAddr;
use std::sync::Arc;

/// Why a login did not produce a session.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("{0}")]
    BadRequest(String),
    #[error("unknown authentication module {0:?}")]
    UnknownModule(String),
    #[error("too many failed logins {scope}; retry in {retry_after} s")]
    RateLimited {
        scope: &'static str,
        retry_after: u64,
    },
    #[error("authentication failed")]
    Rejected,
    #[error("authentication back end unavailable")]
    AuthUnavailable,
    /// A refusal the back end tells apart (Kerberos: expired password, …).
    #[error("authentication refused: {0}")]
    Refused(Refusal),
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
    /// Records when the store keeps none: one table per kind of key.
    local: Mutex<(FailureTable, FailureTable)>,
    store: Arc<dyn SessionStore>,
    /// Bounds the password checks running at once. A check holds its permit
    /// until the authenticator returns, even if the request gave up waiting
    /// for it: a PAM or Kerberos call on a blocking thread cannot be
    /// cancelled, and freeing its slot early would let a slow back end pile
    /// up unbounded work.
    checks: Arc<tokio::sync::Semaphore>,
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
    pub fn new(cfg: &AuthConfig, store: Arc<dyn SessionStore>) -> LoginGuard {
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
            local: Mutex::new((FailureTable::new(accounts), FailureTable::new(addresses))),
            store,
            checks: Arc::new(tokio::sync::Semaphore::new(cfg.max_concurrent_checks)),
            in_flight: Arc::default(),
        }
    }

    /// Waits for the account's turn: one password check per account at a
    /// time in this process, so each failure is counted before the next
    /// guess is checked against the back-off.
    async fn claim(&self, realm: &str, user: &str) -> Claim {
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

    async fn check(&self, realm: &str, user: &str, addr: Option<IpAddr>) -> Result<(), LoginError> {
        let t = now();
        for (scope, key) in Self::keys(realm, user, addr) {
            let backoff = self.backoff(scope);
            if !backoff.enabled() {
                continue;
            }
            let wait = match self.store.failure_counters() {
                Some(shared) => shared
                    .failures(&key)
                    .await?
                    .and_then(|f| backoff.wait(f, t)),
                None => {
                    let local = self.local.lock();
                    let table = match scope {
                        Scope::Address => &local.1,
                        Scope::Account => &local.0,
                    };
                    table.check(&key, t).err()
                }
            };
            if let Some(retry_after) = wait {
                metrics::counter!("sessiond_logins_throttled_total", "scope" => match scope {
                    Scope::Address => "address",
                    Scope::Account => "account",
                })
                .increment(1);
                return Err(LoginError::RateLimited {
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

    async fn failed(&self, realm: &str, user: &str, addr: Option<IpAddr>) {
        let t = now();
        for (scope, key) in Self::keys(realm, user, addr) {
            let backoff = *self.backoff(scope);
            if !backoff.enabled() {
                continue;
            }
            match self.store.failure_counters() {
                Some(shared) => {
                    if let Err(e) = shared.record_failure(&key, &backoff, t).await {
                        metrics::counter!("sessiond_store_errors_total", "op" => "record_failure")
                            .increment(1);
                        tracing::error!(error = %e, "cannot count a failed login in the store");
                    }
                }
                None => {
                    let mut local = self.local.lock();
                    match scope {
                        Scope::Address => local.1.record_failure(&key, t),
                        Scope::Account => local.0.record_failure(&key, t),
                    };
                }
            }
        }
    }

    /// A success clears the account's failures (not the address's: one
    /// right password must not hide a network's guessing).
    async fn succeeded(&self, realm: &str, user: &str) {
        let key = account_key(realm, user);
        match self.store.failure_counters() {
            Some(shared) => {
                if let Err(e) = shared.clear_failures(&key).await {
                    tracing::error!(error = %e, "cannot clear an account's failed logins in the store");
                }
            }
            None => self.local.lock().0.clear(&key),
        }
    }

    /// Drops stale records; called by the sweeper.
    pub fn prune(&self) {
        let t = now();
        let mut local = self.local.lock();
        local.0.prune(t);
        local.1.prune(t);
    }
}

/// A password login as the client asked for it.
pub struct PasswordLogin<'a> {
    pub realm: &'a str,
    pub user: &'a str,
    pub password: Password,
    /// Module as the client wrote it (kept verbatim in the source, `auth/<module>`).
    pub module: Option<&'a str>,
    /// Source to record instead of `auth/<module>` (legacy `/pam_token` records `pam`).
    pub source: Option<&'a str>,
    pub client: Option<IpAddr>,
    /// Expiry to apply instead of the realm's (a browser's "remember me").
    pub policy: Option<RealmPolicy>,
    /// The browser's User-Agent, for "my sessions".
    pub device: Option<String>,
}

pub fn check_realm(realm: &str) -> Result<(), LoginError> {
    check_text("realm", realm).map_err(|e| LoginError::BadRequest(e.to_string()))
}

pub async fn password_login(
    app: &App,
    req: PasswordLogin<'_>,
) -> Result<(Token, SessionRecord), LoginError> {
    let realm = req.realm;
    let a = authenticate_password(app, req).await?;
    issue_with_policy(
        app,
        realm,
        a.identity,
        a.client,
        Token::generate(),
        a.policy,
    )
    .await
}

/// A password login that passed: who, from where, under which policy. A
/// session is not created yet (ticket-only realms never create one).
pub struct Authenticated {
    pub identity: Identity,
    pub client: Client,
    pub policy: RealmPolicy,
}

/// Checks a password login (limits, module, authenticator) without issuing anything.
pub async fn authenticate_password(
    app: &App,
    req: PasswordLogin<'_>,
) -> Result<Authenticated, LoginError> {
    check_realm(req.realm)?;
    check_name("user", req.user).map_err(|e| LoginError::BadRequest(e.to_string()))?;
    let module_text = req.module.unwrap_or(&app.config.auth.default_module);
    let module_key = module_text.to_ascii_lowercase();
    let Some(authenticator) = app.modules.get(&module_key) else {
        return Err(LoginError::UnknownModule(module_text.to_owned()));
    };
    app.guard.check(req.realm, req.user, req.client).await?;
    // One check per account at a time in this process: parallel guesses
    // would otherwise all pass the back-off check before any failure counts.
    let claim = app.guard.claim(req.realm, req.user).await;
    let permit = app
        .guard
        .checks
        .clone()
        .acquire_owned()
        .await
        .expect("the semaphore is never closed");
    // Again: failures may have been recorded while this login waited its turn.
    app.guard.check(req.realm, req.user, req.client).await?;
    // On a task of its own that owns the permit and the account claim, and
    // counts the outcome: if this request is dropped (timeout, client gone)
    // the check still runs to its end in its slot, and a failure still counts.
    let outcome = {
        let authenticator = authenticator.clone();
        let guard = app.guard.clone();
        let (realm, user, password, client) = (
            req.realm.to_owned(),
            req.user.to_owned(),
            req.password.clone(),
            req.client,
        );
        tokio::spawn(async move {
            let outcome = authenticator.authenticate(&realm, &user, &password).await;
            drop(permit);
            match &outcome {
                Ok(_) => guard.succeeded(&realm, &user).await,
                Err(AuthError::Rejected | AuthError::Refused(_)) => {
                    guard.failed(&realm, &user, client).await
                }
                Err(AuthError::Unavailable(_)) => {}
            }
            drop(claim);
            outcome
        })
        .await
        .unwrap_or_else(|e| {
            Err(AuthError::Unavailable(format!(
                "authentication task failed: {e}"
            )))
        })
    };
    let verified = match outcome {
        Ok(v) => v,
        Err(AuthError::Rejected) => {
            metrics::counter!("sessiond_logins_total", "module" => module_key, "result" => "rejected").increment(1);
            tracing::info!(realm = req.realm, user = req.user, module = module_text, client = ?req.client, "login rejected");
            return Err(LoginError::Rejected);
        }
        Err(AuthError::Refused(reason)) => {
            metrics::counter!("sessiond_logins_total", "module" => module_key, "result" => "rejected").increment(1);
            tracing::info!(realm = req.realm, user = req.user, module = module_text, client = ?req.client, %reason, "login refused");
            return Err(LoginError::Refused(reason));
        }
        Err(AuthError::Unavailable(reason)) => {
            metrics::counter!("sessiond_logins_total", "module" => module_key, "result" => "unavailable").increment(1);
            tracing::error!(module = module_text, %reason, "authentication back end unavailable");
            return Err(LoginError::AuthUnavailable);
        }
    };
    // The authority's name for the account, checked like a typed one: it is
    // echoed line by line and put in headers.
    check_name("user", &verified.user).map_err(|e| {
        tracing::error!(module = module_text, error = %e, "the authenticator returned an unusable user name");
        LoginError::AuthUnavailable
    })?;
    metrics::counter!("sessiond_logins_total", "module" => module_key, "result" => "ok")
        .increment(1);
    let identity = Identity {
        source: req
            .source
            .map(str::to_owned)
            .unwrap_or_else(|| format!("auth/{module_text}")),
        user: verified.user,
        uid: verified.uid,
        gid: verified.gid,
    };
    let policy = req
        .policy
        .unwrap_or_else(|| app.config.realm_policy(req.realm));
    // Sealed at once: the clear ccache is dropped (and wiped) right here.
    let credentials = verified
        .credentials
        .map(|c| app.seal_credentials(req.realm, &identity.user, c.expose()));
    let client = Client {
        addr: req.client,
        device: req.device,
        credential_end: verified.credential_lifetime.map(|l| now().plus(l)),
        credentials,
    };
    Ok(Authenticated {
        identity,
        client,
        policy,
    })
}

/// Stores a session for an already-established identity under `token`.
pub async fn issue(
    app: &App,
    realm: &str,
    identity: Identity,
    client: Option<IpAddr>,
    token: Token,
) -> Result<(Token, SessionRecord), LoginError> {
    let policy = app.config.realm_policy(realm);
    let client = Client {
        addr: client,
        device: None,
        credential_end: None,
        credentials: None,
    };
    issue_with_policy(app, realm, identity, client, token, policy).await
}

/// What a session records about the client that logged in.
pub struct Client {
    pub addr: Option<IpAddr>,
    pub device: Option<String>,
    /// When the credentials from the login end (the session ends earlier).
    pub credential_end: Option<sessiond_core::Timestamp>,
    /// The login's credentials, sealed (base64).
    pub credentials: Option<String>,
}

/// [`issue`] with an explicit expiry policy.
pub async fn issue_with_policy(
    app: &App,
    realm: &str,
    identity: Identity,
    client: Client,
    token: Token,
    policy: RealmPolicy,
) -> Result<(Token, SessionRecord), LoginError> {
    let new = NewSession {
        realm: realm.to_owned(),
        policy,
        identity,
        credential_end: client.credential_end,
        client_addr: client.addr,
        device: client.device,
        credentials: client.credentials,
    };
    let record = app
        .store
        .create(token.hash(), new, now())
        .await
        .inspect_err(|e| {
            metrics::counter!("sessiond_store_errors_total", "op" => "create").increment(1);
            tracing::error!(error = %e, "cannot store new session");
        })?;
    tracing::info!(
        realm,
        user = %record.identity.user,
        source = %record.identity.source,
        session = %token.hash().short(),
        "session issued"
    );
    Ok((token, record))
}
