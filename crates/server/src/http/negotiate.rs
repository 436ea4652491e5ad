//! `Authorization: Negotiate` (SPNEGO/Kerberos) as a way to log in, wherever
//! a password is accepted: the browser's `GET /session/login_kerberos`,
//! forward auth (`GET /auth`), `/v1/login` and `/auth_token`. The accepted
//! principal becomes a session like a password login would, so every later
//! request is a cheap token or cookie check instead of a Negotiate exchange.

use super::ClientAddr;
use crate::app::App;
use crate::login::{self, LoginError};
use axum::http::{header, HeaderMap, HeaderValue};
use base64::Engine;
use sessiond_core::session::SessionRecord;
use sessiond_core::Token;
use std::net::IpAddr;

/// The challenge sent on 401 answers where Negotiate is accepted.
pub const CHALLENGE: HeaderValue = HeaderValue::from_static("Negotiate");

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

/// The token of an `Authorization: Negotiate <base64>` header: `None`
/// without one, `Some(Err)` for a malformed one.
pub fn token(headers: &HeaderMap) -> Option<Result<Vec<u8>, ()>> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("negotiate") {
        return None;
    }
    Some(
        base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .map_err(|_| ()),
    )
}

/// Why a Negotiate login did not give a session.
#[derive(Debug)]
pub enum Failure {
    /// Not built with Kerberos, or `kerberos.negotiate` is off.
    NotEnabled,
    /// Malformed, foreign, replayed or expired token: 401 with the challenge.
    Refused(String),
    /// The exchange needs another leg: 401 with this `WWW-Authenticate`.
    #[cfg_attr(not(feature = "kerberos"), allow(dead_code))]
    Continue(HeaderValue),
    /// GSSAPI or the store cannot answer: 503.
    #[cfg_attr(not(feature = "kerberos"), allow(dead_code))]
    Unavailable(String),
    Login(LoginError),
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
) -> Result<NegotiatedSession, Failure> {
    if !app.config.negotiate_in(realm) {
        return Err(Failure::NotEnabled);
    }
    let gss_token =
        gss_token.map_err(|_| Failure::Refused("the Negotiate token is not base64".into()))?;
    login::check_realm(realm).map_err(Failure::Login)?;
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
) -> Result<NegotiatedSession, Failure> {
    use crate::login::Client;
    use sessiond_auth::kerberos::{NegotiateError, Step};
    use sessiond_core::Identity;
    let step = app
        .negotiate
        .step(connection, gss_token)
        .await
        .map_err(|e| match e {
            NegotiateError::Unavailable(m) => Failure::Unavailable(m),
            e => Failure::Refused(e.to_string()),
        })?;
    let accepted = match step {
        Step::Done(accepted) => accepted,
        Step::Continue(reply) => {
            let value = challenge_with(&reply)
                .ok_or_else(|| Failure::Refused("unencodable reply token".into()))?;
            return Err(Failure::Continue(value));
        }
    };
    let user = crate::app::to_auth_mapping(
        app.config.principal_mapping_in(realm),
        &app.krb_local_realms,
    )
    .apply(&accepted.principal);
    sessiond_core::names::check_name("user", &user)
        .map_err(|e| Failure::Refused(format!("principal {}: {e}", accepted.principal)))?;
    metrics::counter!("sessiond_logins_total", "module" => "negotiate", "result" => "ok")
        .increment(1);
    tracing::info!(realm, principal = %accepted.principal, delegated = accepted.delegated, "Negotiate accepted");
    let identity = Identity::new(user, "negotiate");
    // Delegated credentials are sealed at once and kept only with a session.
    let credentials = match (&accepted.credentials, store_session) {
        (Some(c), true) => Some(app.seal_credentials(realm, &identity.user, c.expose())),
        _ => None,
    };
    let login_client = Client {
        addr: client,
        device,
        credential_end: Some(crate::clock::now().plus(accepted.lifetime)),
        credentials,
    };
    let policy = app.config.realm_policy(realm);
    let (token, record) = if store_session {
        let (token, record) = login::issue_with_policy(
            app,
            realm,
            identity,
            login_client,
            Token::generate(),
            policy,
        )
        .await
        .map_err(Failure::Login)?;
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
        (
            None,
            sessiond_core::SessionRecord::issue(new, 0, crate::clock::now()),
        )
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
) -> Result<NegotiatedSession, Failure> {
    Err(Failure::NotEnabled)
}

#[cfg(test)]
mod tests {
    use super::token;
    use axum::http::{header, HeaderMap, HeaderValue};
    use base64::Engine;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10_000))]

        /// Any Authorization header: not Negotiate, a decoded token, or a
        /// refusal — never a panic; a real token comes back byte for byte.
        #[test]
        fn negotiate_header(
            value in prop_oneof![".{0,80}", "(?i:negotiate) [A-Za-z0-9+/=]{0,80}", "[A-Za-z]{0,12} .{0,40}"],
            bytes in proptest::collection::vec(any::<u8>(), 1..120),
        ) {
            let mut headers = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.insert(header::AUTHORIZATION, v);
                let _ = token(&headers);
            }
            let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
            headers.insert(
                header::AUTHORIZATION,
                HeaderValue::from_str(&format!("Negotiate {encoded}")).unwrap(),
            );
            prop_assert_eq!(token(&headers), Some(Ok(bytes)));
        }
    }
}
