//! `Authorization: Negotiate` (SPNEGO/Kerberos) as a way to log in, wherever
//! a password is accepted: the browser's `GET /session/login_kerberos`,
//! forward auth (`GET /auth`), `/v1/login` and `/auth_token`. The accepted
//! principal becomes a session like a password login would, so every later
//! request is a cheap token or cookie check instead of a Negotiate exchange.

use super::error::{Error, Negotiate};
use super::ClientAddr;
use crate::app::App;
use crate::login;
use axum::http::HeaderValue;
use base64::Engine;
use sessiond_core::session::SessionRecord;
use sessiond_core::Token;
use std::net::IpAddr;

/// `WWW-Authenticate: Negotiate <base64 token>`, the server's token for the
/// client (the next leg, or the mutual-authentication reply).
#[cfg_attr(not(feature = "kerberos"), allow(dead_code))]
fn challenge_with(token: &[u8]) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!(
        "Negotiate {}",
        base64::engine::general_purpose::STANDARD.encode(token)
    ))
    .ok()
}

/// A session made from an accepted token, and the reply token for
/// `WWW-Authenticate` (mutual authentication).
pub struct NegotiatedSession {
    /// `None` when only the identity was asked for (no session stored).
    pub token: Option<Token>,
    pub record: SessionRecord,
    pub reply: Option<HeaderValue>,
}

/// Accepts the request's Negotiate token and issues a session in `realm`.
pub async fn login(
    app: &App,
    realm: &str,
    gss_token: Result<Vec<u8>, ()>,
    client: Option<ClientAddr>,
    device: Option<String>,
    store_session: bool,
) -> Result<NegotiatedSession, Error> {
    if !app.config.negotiate_in(realm) {
        return Err(Negotiate::NotEnabled.into());
    }
    let gss_token =
        gss_token.map_err(|_| Negotiate::Refused("the Negotiate token is not base64".into()))?;
    login::check_realm(realm)?;
    // An exchange that needs several legs continues on its TCP connection,
    // which only a direct client has (a proxy's connections carry many).
    let connection = client
        .filter(|c| c.client == c.peer.ip())
        .map(|c| c.peer.to_string());
    accept_and_issue(
        app,
        realm,
        gss_token,
        client.map(|c| c.client),
        connection,
        device,
        store_session,
    )
    .await
}

#[cfg(feature = "kerberos")]
async fn accept_and_issue(
    app: &App,
    realm: &str,
    gss_token: Vec<u8>,
    client: Option<IpAddr>,
    connection: Option<String>,
    device: Option<String>,
    store_session: bool,
) -> Result<NegotiatedSession, Error> {
    use crate::audit::{Action, Event, Outcome};
    use crate::login::Client;
    use sessiond_auth::kerberos::{NegotiateError, Step};
    use sessiond_core::Identity;
    let targets = app
        .config
        .delegation_in(realm)
        .map(|d| d.targets.clone())
        .unwrap_or_default();
    let step = app
        .negotiate
        .step(connection, gss_token, targets)
        .await
        .map_err(|e| {
            let failed = |reason| {
                app.audit.emit(
                    Event::new(Action::Login, Outcome::Failure)
                        .realm(realm)
                        .source("negotiate")
                        .reason(reason),
                )
            };
            match e {
                NegotiateError::Unavailable(m) => {
                    failed("auth_unavailable");
                    Negotiate::Unavailable(m)
                }
                e => {
                    failed("negotiate_refused");
                    Negotiate::Refused(e.to_string())
                }
            }
        })?;
    let accepted = match step {
        Step::Done(accepted) => accepted,
        Step::Continue(reply) => {
            let value = challenge_with(&reply)
                .ok_or_else(|| Negotiate::Refused("unencodable reply token".into()))?;
            return Err(Negotiate::Continue(value).into());
        }
    };
    let user = crate::app::to_auth_mapping(
        app.config.principal_mapping_in(realm),
        &app.krb_local_realms,
    )
    .apply(&accepted.principal);
    sessiond_core::names::check_name("user", &user)
        .map_err(|e| Negotiate::Refused(format!("principal {}: {e}", accepted.principal)))?;
    metrics::counter!("sessiond_logins_total", "module" => "negotiate", "result" => "ok")
        .increment(1);
    tracing::info!(realm, principal = %accepted.principal, delegated = accepted.delegated, "Negotiate accepted");
    let groups = app.kerberos_groups(&user).await;
    login::warn_unusable_groups("negotiate", &groups);
    let identity = Identity::new(user, "negotiate").with_groups(groups);
    // Delegated credentials — a forwarded TGT, or else the back ends'
    // tickets obtained from this login's evidence — are sealed at once and
    // kept only with a session.
    let kept = accepted
        .credentials
        .as_ref()
        .or(accepted.target_tickets.as_ref());
    let credentials = match (kept, store_session) {
        (Some(c), true) => Some(app.seal_credentials(realm, &identity.user, c.expose())),
        _ => None,
    };
    let login_client = Client {
        addr: client,
        device,
        credential_end: Some(crate::clock::now().plus(accepted.lifetime)),
        credentials,
    };
    let policy = app.realm_policy(realm);
    let (token, record) = if store_session {
        let (token, record) = login::issue_with_policy(
            app,
            realm,
            identity,
            login_client,
            Token::generate(),
            policy,
        )
        .await?;
        (Some(token), record)
    } else {
        let new = sessiond_core::NewSession {
            realm: realm.to_owned(),
            identity,
            policy,
            credential_end: login_client.credential_end,
            client_addr: login_client.addr,
            device: login_client.device,
            credentials: None,
        };
        let record = sessiond_core::SessionRecord::issue(new, 0, crate::clock::now());
        app.audit.emit(
            Event::new(Action::Login, Outcome::Success)
                .realm(realm)
                .user(&record.identity.user)
                .source("negotiate")
                .reason("no_session"),
        );
        (None, record)
    };
    let reply = accepted.reply.as_deref().and_then(challenge_with);
    Ok(NegotiatedSession {
        token,
        record,
        reply,
    })
}

#[cfg(not(feature = "kerberos"))]
async fn accept_and_issue(
    _app: &App,
    _realm: &str,
    _gss_token: Vec<u8>,
    _client: Option<IpAddr>,
    _connection: Option<String>,
    _device: Option<String>,
    _store_session: bool,
) -> Result<NegotiatedSession, Error> {
    Err(Negotiate::NotEnabled.into())
}
