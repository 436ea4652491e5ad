//! Credentials and request facts, each read from the request in one place
//! and handed to handlers as axum extractors: the client address, the
//! `Authorization` schemes (Bearer, Negotiate), the admin and
//! credential-reader checks, the realm and session cookie of a browser
//! request (checked by `browser::BrowserSession`),
//! the session token of `X-Sessiond-Token`, and JSON bodies. A handler names
//! what it needs in its signature; a request without it is refused with the
//! one error model (`error.rs`) before the handler runs.
//!
//! Which sources a surface reads is a security decision, so each source is
//! its own extractor rather than one "find a token anywhere": a cookie is an
//! ambient credential and is read only by the browser routes, which check
//! the origin of every POST; the JSON API reads only headers and bodies a
//! page cannot make a browser send cross-site.

use super::error::{Caller, Error};
use super::params::Params;
use super::ClientAddr;
use crate::app::App;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use base64::Engine;
use serde::de::DeserializeOwned;
use sessiond_core::Token;
use sessiond_store::Access;
use std::sync::Arc;

/// The bearer credential of an `Authorization` header, if any: the admin
/// credential for the text protocol, the session token for `/v1`.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let (scheme, rest) = authorization(headers)?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

fn authorization(headers: &HeaderMap) -> Option<(&str, &str)> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .split_once(' ')
}

/// The token of an `Authorization: Negotiate <base64>` header: `None`
/// without one, `Some(Err)` for a malformed one.
pub fn negotiate_token(headers: &HeaderMap) -> Option<Result<Vec<u8>, ()>> {
    let (scheme, rest) = authorization(headers)?;
    if !scheme.eq_ignore_ascii_case("negotiate") {
        return None;
    }
    Some(
        base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .map_err(|_| ()),
    )
}

/// The query string's pairs, decoded once per request: several extractors
/// of one handler (`Realm`, the browser session, `access`) read it.
#[derive(Clone)]
struct QueryPairs(Arc<Vec<(String, String)>>);

/// One query parameter, decoded; the last of repeated ones.
fn query_param(parts: &mut Parts, name: &str) -> Option<String> {
    let pairs = match parts.extensions.get::<QueryPairs>() {
        Some(p) => p.clone(),
        None => {
            let decoded = parts
                .uri
                .query()
                .and_then(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok())
                .unwrap_or_default();
            let p = QueryPairs(Arc::new(decoded));
            parts.extensions.insert(p.clone());
            p
        }
    };
    pairs
        .0
        .iter()
        .rfind(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

/// A request body, whole; 413 when it is over `server.max_body_bytes` or
/// cut off.
async fn body_bytes(body: axum::body::Body) -> Result<axum::body::Bytes, Error> {
    axum::body::to_bytes(body, usize::MAX)
        .await
        .map_err(|_| Error::BodyTooLarge)
}

/// `Authorization: Bearer <credential>`, if any (the text protocol's admin
/// credential; the routes with a fixed caller use [`Admin`],
/// [`CredentialReader`] or [`BearerSession`]).
pub struct Bearer(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for Bearer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Bearer(bearer(&parts.headers).map(str::to_owned)))
    }
}

/// SessionKeyServer's parameters — `token`, `realm`, `user`, `pwd`, … —
/// from the query and, for a POST, an url-encoded form body, decoded into
/// one set by the protocol's own rules (`params.rs`: a body value wins,
/// and whether a value came in the URL is kept, for refusing passwords
/// there).
pub struct TextParams(pub Params);

impl<S: Send + Sync> FromRequest<S> for TextParams {
    type Rejection = Error;

    async fn from_request(req: Request, _: &S) -> Result<Self, Error> {
        let (parts, body) = req.into_parts();
        let mut params = Params::default();
        params
            .add(parts.uri.query().unwrap_or(""), true)
            .map_err(|e| Error::BadRequest(format!("{e} in the query string")))?;
        if parts.method != axum::http::Method::POST {
            return Ok(TextParams(params));
        }
        let bytes = body_bytes(body).await?;
        if bytes.is_empty() {
            return Ok(TextParams(params));
        }
        let form = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if !form {
            return Err(Error::UnsupportedMediaType(
                "POST bodies must be application/x-www-form-urlencoded",
            ));
        }
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| Error::BadRequest("the form body is not UTF-8".into()))?;
        params
            .add(text, false)
            .map_err(|e| Error::BadRequest(format!("{e} in the form body")))?;
        Ok(TextParams(params))
    }
}

/// Who is on the other end (see [`ClientAddr`]); `None` in-process.
pub struct Client(pub Option<ClientAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Client(parts.extensions.get::<ClientAddr>().copied()))
    }
}

impl Client {
    /// The client's address, as login limits and sessions record it.
    pub fn ip(&self) -> Option<std::net::IpAddr> {
        self.0.map(|c| c.client)
    }
}

/// `Authorization: Negotiate`: `None` without it, `Some(Err)` for a token
/// that is not base64 (refused only where Negotiate is on).
pub struct NegotiateHeader(pub Option<Result<Vec<u8>, ()>>);

impl<S: Send + Sync> FromRequestParts<S> for NegotiateHeader {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(NegotiateHeader(negotiate_token(&parts.headers)))
    }
}

/// The administrator: the request carries the admin credential. Without one
/// configured, the admin routes answer 404, as if they did not exist.
pub struct Admin;

impl FromRequestParts<Arc<App>> for Admin {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, Error> {
        own_credential(
            app,
            parts,
            Caller::Admin,
            app.has_admin(),
            "user session administration needs an admin credential configured",
            |c| app.is_admin(c),
        )
        .map(|()| Admin)
    }
}

/// A back end allowed to fetch delegated credentials
/// (`kerberos.credential_readers_file`).
pub struct CredentialReader;

impl FromRequestParts<Arc<App>> for CredentialReader {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, Error> {
        own_credential(
            app,
            parts,
            Caller::Reader,
            app.has_credential_readers(),
            "fetching credentials needs kerberos.credential_readers_file",
            |c| app.is_credential_reader(c),
        )
        .map(|()| CredentialReader)
    }
}

/// A caller's own credential as `Authorization: Bearer`: 404 while none is
/// configured (`needs` says what enables it), 401 without one, 403 for one
/// `accepted` refuses (a constant-time comparison in `App`). A refusal is
/// an audit event (an admin or a back end that is not one).
fn own_credential(
    app: &App,
    parts: &Parts,
    who: Caller,
    configured: bool,
    needs: &'static str,
    accepted: impl Fn(&str) -> bool,
) -> Result<(), Error> {
    use crate::audit::{Action, Event, Outcome};
    if !configured {
        return Err(Error::NotConfigured(needs));
    }
    match bearer(&parts.headers) {
        Some(presented) if accepted(presented) => Ok(()),
        presented => {
            let action = match who {
                Caller::Admin => Action::Admin,
                Caller::Reader => Action::CredentialFetch,
            };
            let reason = if presented.is_some() {
                "wrong_credential"
            } else {
                "missing_credential"
            };
            app.audit
                .emit(Event::new(action, Outcome::Failure).reason(reason));
            Err(Error::Credential {
                who,
                presented: presented.is_some(),
            })
        }
    }
}

/// The store's ability to enumerate a user's sessions, which routes that
/// list or end "all but one" need. A store without it (memcached) is known
/// at start (`Store::users`, logged then); its routes answer 501.
pub struct Users(pub Arc<dyn sessiond_store::UserSessions>);

impl FromRequestParts<Arc<App>> for Users {
    type Rejection = Error;

    async fn from_request_parts(_: &mut Parts, app: &Arc<App>) -> Result<Self, Error> {
        app.store.users.clone().map(Users).ok_or_else(|| {
            Error::NotSupported(format!(
                "the {} session store cannot list a user's sessions",
                app.store.kind()
            ))
        })
    }
}

/// The session token a back end passes on for its user: `X-Sessiond-Token`.
pub struct HeaderToken(pub Token);

impl<S: Send + Sync> FromRequestParts<S> for HeaderToken {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Error> {
        parts
            .headers
            .get("x-sessiond-token")
            .and_then(|v| v.to_str().ok())
            .filter(|t| !t.is_empty())
            .map(|t| HeaderToken(Token::from_client(t)))
            .ok_or_else(|| {
                Error::BadRequest("send the user's session token as X-Sessiond-Token".into())
            })
    }
}

/// `?target=` of a credentials fetch: the service a back end wants a ticket
/// for on its user's behalf (constrained delegation); none for the
/// credentials the session itself keeps.
pub struct Target(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for Target {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Target(query_param(parts, "target")))
    }
}

/// The caller's own session on `/v1`: `Authorization: Bearer <token>` and
/// `?realm=` (required: a token is checked in the realm the caller names).
pub struct BearerSession {
    pub token: Token,
    pub realm: String,
}

impl<S: Send + Sync> FromRequestParts<S> for BearerSession {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Error> {
        let token = Token::from_client(bearer(&parts.headers).ok_or(Error::MissingToken)?);
        let realm = query_param(parts, "realm")
            .ok_or_else(|| Error::BadRequest("missing realm query parameter".into()))?;
        Ok(BearerSession { token, realm })
    }
}

/// The realm of a browser or ticket request: `?realm=`, else
/// `browser.realm`.
pub struct Realm(pub String);

impl FromRequestParts<Arc<App>> for Realm {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &Arc<App>,
    ) -> Result<Self, Self::Rejection> {
        Ok(Realm(
            app.config
                .browser
                .realm_or_default(query_param(parts, "realm")),
        ))
    }
}

/// The browser's session cookie for the request's realm, not yet checked
/// (logout ends what it names; everything else wants a [`BrowserSession`]).
pub struct SessionCookie {
    pub realm: String,
    pub token: Option<Token>,
}

impl FromRequestParts<Arc<App>> for SessionCookie {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &Arc<App>,
    ) -> Result<Self, Self::Rejection> {
        let Realm(realm) = Realm::from_request_parts(parts, app).await?;
        let token =
            super::browser::cookie::session_token(&parts.headers, app.config.cookie(&realm));
        Ok(SessionCookie { realm, token })
    }
}

/// How a browser check touches the session: [`Access::Peek`] (not
/// activity) with `?passive=1` (a proxy route for polling) or the header
/// `X-Sessiond-Passive: 1` (sessiond.js's `{passive: true}`), so background
/// polling cannot keep an abandoned session alive; [`Access::Touch`]
/// otherwise.
pub fn access(parts: &mut Parts) -> Access {
    let on = |v: &str| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false");
    let passive = query_param(parts, "passive").is_some_and(|v| on(&v))
        || parts
            .headers
            .get("x-sessiond-passive")
            .and_then(|v| v.to_str().ok())
            .is_some_and(on);
    if passive {
        Access::Peek
    } else {
        Access::Touch
    }
}

/// [`access`] as an extractor, for a handler that checks the session only
/// when it needs one (forward auth: not for a `public` or `deny` rule).
pub struct Activity(pub Access);

impl<S: Send + Sync> FromRequestParts<S> for Activity {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Activity(access(parts)))
    }
}

/// Whether the caller wants JSON (an XHR/fetch) rather than a page.
pub fn wants_json(headers: &HeaderMap) -> bool {
    let text = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
    text("x-requested-with").eq_ignore_ascii_case("xmlhttprequest")
        || (text("accept").contains("application/json") && !text("accept").contains("text/html"))
}

/// A short description of the browser, from its User-Agent (at most 160
/// characters: the listing needs a hint, not a fingerprint).
pub struct Device(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for Device {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let ua = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|ua| !ua.is_empty());
        Ok(Device(ua.map(|ua| {
            ua.chars().filter(|c| !c.is_control()).take(160).collect()
        })))
    }
}

/// A JSON body, with `Content-Type: application/json`; a clear 415 or 400
/// saying what was wrong otherwise.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = Error;

    async fn from_request(req: Request, _: &S) -> Result<Self, Error> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if !is_json {
            return Err(Error::UnsupportedMediaType(
                "send a JSON body with Content-Type: application/json",
            ));
        }
        let bytes = body_bytes(req.into_body()).await?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| Error::BadRequest(format!("invalid JSON body: {e}")))
    }
}

/// A form body (`application/x-www-form-urlencoded`), as browsers post it.
pub struct FormBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for FormBody<T> {
    type Rejection = Error;

    async fn from_request(req: Request, _: &S) -> Result<Self, Error> {
        let bytes = body_bytes(req.into_body()).await?;
        serde_urlencoded::from_bytes(&bytes)
            .map(FormBody)
            .map_err(|e| {
                Error::BadRequest(format!(
                    "send a form (application/x-www-form-urlencoded): {e}"
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::negotiate_token;
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
                let _ = negotiate_token(&headers);
            }
            let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
            headers.insert(
                header::AUTHORIZATION,
                HeaderValue::from_str(&format!("Negotiate {encoded}")).unwrap(),
            );
            prop_assert_eq!(negotiate_token(&headers), Some(Ok(bytes)));
        }
    }
}
