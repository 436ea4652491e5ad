//! Logging a user in: pick the module, apply the failure limits, run the
//! authenticator, issue the session. Shared by the text protocol and `/v1`.

use crate::app::App;
use crate::audit::{Action, Event, Outcome};
use crate::clock::now;
use crate::throttle::Throttled;
use sessiond_auth::{AuthError, Password, Refusal};
use sessiond_core::names::{check_name, check_text};
use sessiond_core::session::SessionRecord;
use sessiond_core::{Identity, NewSession, RealmPolicy, Token};
use sessiond_store::StoreError;
use std::net::IpAddr;

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

impl From<Throttled> for LoginError {
    fn from(t: Throttled) -> LoginError {
        match t {
            Throttled::Limited { scope, retry_after } => {
                LoginError::RateLimited { scope, retry_after }
            }
            Throttled::Store(e) => LoginError::Store(e),
        }
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
    let Some(authenticator) = app.module(&module_key) else {
        return Err(LoginError::UnknownModule(module_text.to_owned()));
    };
    app.guard
        .check(req.realm, req.user, req.client)
        .await
        .map_err(|t| throttled(app, &req, t))?;
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
    app.guard
        .check(req.realm, req.user, req.client)
        .await
        .map_err(|t| throttled(app, &req, t))?;
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
    let source = req
        .source
        .map(str::to_owned)
        .unwrap_or_else(|| format!("auth/{module_text}"));
    let failed = |reason: &str| {
        app.audit.emit(
            Event::new(Action::Login, Outcome::Failure)
                .realm(req.realm)
                .user(req.user)
                .source(&source)
                .reason(reason),
        )
    };
    let verified = match outcome {
        Ok(v) => v,
        Err(AuthError::Rejected) => {
            metrics::counter!("sessiond_logins_total", "module" => module_key, "result" => "rejected").increment(1);
            tracing::info!(realm = req.realm, user = req.user, module = module_text, client = ?req.client, "login rejected");
            failed("authentication_failed");
            return Err(LoginError::Rejected);
        }
        Err(AuthError::Refused(reason)) => {
            metrics::counter!("sessiond_logins_total", "module" => module_key, "result" => "rejected").increment(1);
            tracing::info!(realm = req.realm, user = req.user, module = module_text, client = ?req.client, %reason, "login refused");
            failed(reason.code());
            return Err(LoginError::Refused(reason));
        }
        Err(AuthError::Unavailable(reason)) => {
            metrics::counter!("sessiond_logins_total", "module" => module_key, "result" => "unavailable").increment(1);
            tracing::error!(module = module_text, %reason, "authentication back end unavailable");
            failed("auth_unavailable");
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
    let mut groups = verified.groups;
    if module_text.eq_ignore_ascii_case("krb5") {
        groups.extend(app.kerberos_groups(&verified.user).await);
    }
    warn_unusable_groups(module_text, &groups);
    let identity = Identity {
        source,
        user: verified.user,
        uid: verified.uid,
        gid: verified.gid,
        groups: Vec::new(),
    }
    .with_groups(groups);
    let policy = req.policy.unwrap_or_else(|| app.realm_policy(req.realm));
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

/// A login the failure limits refused before any check: audited, then the
/// login error.
fn throttled(app: &App, req: &PasswordLogin<'_>, t: Throttled) -> LoginError {
    if matches!(t, Throttled::Limited { .. }) {
        app.audit.emit(
            Event::new(Action::Throttled, Outcome::Failure)
                .realm(req.realm)
                .user(req.user)
                .reason("rate_limited"),
        );
    }
    t.into()
}

/// Logs the groups an identity leaves out (a comma, a control character,
/// surrounding spaces: names no header can carry unambiguously), naming
/// where they came from.
pub fn warn_unusable_groups(source: &str, groups: &[String]) {
    for g in groups {
        if let Err(e) = sessiond_core::names::check_group(g) {
            tracing::warn!(source, group = ?g, error = %e, "group left out of the session");
        }
    }
}

/// Stores a session for an already-established identity under `token`.
pub async fn issue(
    app: &App,
    realm: &str,
    identity: Identity,
    client: Option<IpAddr>,
    token: Token,
) -> Result<(Token, SessionRecord), LoginError> {
    let policy = app.realm_policy(realm);
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
    let record = app.store.create(token.hash(), new, now()).await?;
    app.audit.emit(
        Event::new(Action::Login, Outcome::Success)
            .realm(realm)
            .user(&record.identity.user)
            .source(&record.identity.source)
            .session(&token.hash()),
    );
    // Generation 1 is the user's first login in the realm: nothing to
    // supersede.
    if record.supersede && record.generation > 1 {
        app.audit.emit(
            Event::new(Action::Supersede, Outcome::Success)
                .realm(realm)
                .user(&record.identity.user)
                .source(&record.identity.source)
                .session(&token.hash())
                .reason("newer_login"),
        );
    }
    tracing::info!(
        realm,
        user = %record.identity.user,
        source = %record.identity.source,
        session = %token.hash().short(),
        "session issued"
    );
    Ok((token, record))
}
