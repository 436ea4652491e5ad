//! Browser sessions: the login form and page, logout, whoami; forward auth
//! for reverse proxies (`GET /auth`) is in `forward_auth.rs`. The session lives server-side in
//! the store; the cookie holds only the token.
//!
//! Failures are answered by the one error model: JSON for scripts, and for
//! a browser a page ([`render_failures`] re-renders them) — the login form
//! again after a failed login.

pub mod cookie;
mod forward_auth;
mod origin;
mod page;
mod sessions;

use super::check;
use super::error::{Error, Failed, Negotiate};
use super::extract::{
    access, wants_json, Client, Device, FormBody, NegotiateHeader, Realm, SessionCookie,
};
use super::{negotiate, tickets, view};
use crate::app::App;
use crate::audit::{Action, Event, Outcome};
use crate::clock::now;
use crate::login::{authenticate_password, password_login, PasswordLogin};
use axum::extract::{FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use origin::SameOrigin;
use serde::Deserialize;
use serde_json::json;
use sessiond_auth::Password;
use sessiond_core::{RealmPolicy, Token};
use std::sync::Arc;

pub use forward_auth::forward_auth;
pub use page::script;
pub use sessions::{end as end_session, end_others as end_other_sessions, list as sessions_page};

/// The browser's current session: the cookie of the request's realm,
/// checked (passively when asked). Without one: 401 `login-required`.
pub struct BrowserSession {
    pub realm: String,
    pub token: Token,
    pub record: sessiond_core::SessionRecord,
}

impl FromRequestParts<Arc<App>> for BrowserSession {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, Error> {
        let cookie = SessionCookie::from_request_parts(parts, app)
            .await
            .unwrap_or_else(|never| match never {});
        BrowserSession::check(app, cookie, access(parts)).await
    }
}

impl BrowserSession {
    /// Checks the cookie's session: 401 `login-required` without a live one.
    pub async fn check(
        app: &App,
        SessionCookie { realm, token }: SessionCookie,
        access: sessiond_store::Access,
    ) -> Result<BrowserSession, Error> {
        let token = token.ok_or(Error::LoginRequired { ended: false })?;
        let record = check::current(app, &token, &realm, access)
            .await
            .map_err(|e| match e {
                Error::NotCurrent => Error::LoginRequired { ended: true },
                e => e,
            })?;
        Ok(BrowserSession {
            realm,
            token,
            record,
        })
    }
}

/// 303 to `target` (a path or a checked URL), `fallback` if it cannot be a
/// header value.
fn see_other(target: &str, fallback: &'static str) -> Response {
    let location = HeaderValue::from_str(target).unwrap_or(HeaderValue::from_static(fallback));
    (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
}

/// A failed login form: shown again with the message and `next` kept.
struct LoginFormFailed {
    error: Error,
    form: LoginFormPage,
}

/// How to show the login form again, for [`render_failures`].
#[derive(Clone)]
struct LoginFormPage {
    next: String,
    /// Whether the form offers "remember me".
    remember: bool,
}

impl IntoResponse for LoginFormFailed {
    fn into_response(self) -> Response {
        let mut r = self.error.json();
        r.extensions_mut().insert(self.form);
        r
    }
}

/// The browser routes' failure renderer: handlers answer failures as JSON
/// (the one error model); for a browser that wants a page, the failure is
/// rendered again as one — the login form after a failed login, a short
/// text page otherwise — keeping the headers the handler added.
pub async fn render_failures(req: Request, next: Next) -> Response {
    let json = wants_json(req.headers());
    let response = next.run(req).await;
    if json {
        return response;
    }
    let Some(Failed(error)) = response.extensions().get::<Failed>().cloned() else {
        return response;
    };
    let form = response.extensions().get::<LoginFormPage>().cloned();
    let pages = |e: &Error, status: StatusCode, message: &str| match (e, &form) {
        (Error::Login(_) | Error::Negotiate(_), Some(form)) => Some(page::login_page_with(
            form.remember,
            status,
            Some(&form.next),
            Some(message),
        )),
        (Error::NotAllowed { user, .. }, _) => Some(page::not_allowed_page(user.as_deref())),
        _ => None,
    };
    let mut page = error.page(&pages);
    // Every value of every header the page does not set itself.
    let names: Vec<HeaderName> = response
        .headers()
        .keys()
        .filter(|n| {
            **n != header::CONTENT_TYPE
                && **n != header::CONTENT_LENGTH
                && !page.headers().contains_key(*n)
        })
        .cloned()
        .collect();
    for name in names {
        for value in response.headers().get_all(&name) {
            page.headers_mut().append(name.clone(), value.clone());
        }
    }
    page
}

#[derive(Deserialize)]
pub struct LoginForm {
    user: Option<String>,
    password: Option<String>,
    realm: Option<String>,
    module: Option<String>,
    next: Option<String>,
    /// The "remember me" box (any value = ticked).
    remember: Option<String>,
}

/// `POST /session/login_password`
pub async fn login_password(
    State(app): State<Arc<App>>,
    _: SameOrigin,
    client: Client,
    Device(device): Device,
    headers: HeaderMap,
    FormBody(form): FormBody<LoginForm>,
) -> Result<Response, Response> {
    let next = origin::safe_next(&app, &headers, form.next.as_deref());
    login_form(&app, client, device, &headers, form, &next)
        .await
        .map_err(|error| {
            let remember = app.config.browser.remember_me.is_some();
            LoginFormFailed {
                error,
                form: LoginFormPage { next, remember },
            }
            .into_response()
        })
}

async fn login_form(
    app: &App,
    client: Client,
    device: Option<String>,
    headers: &HeaderMap,
    form: LoginForm,
    next: &str,
) -> Result<Response, Error> {
    let realm = app.config.browser.realm_or_default(form.realm.clone());
    let (Some(user), Some(password)) = (form.user.as_deref(), form.password.clone()) else {
        return Err(Error::BadRequest("the form needs user and password".into()));
    };
    let remember = form.remember.is_some() && app.config.browser.remember_me.is_some();
    let policy = remember.then(|| {
        let r = app.config.browser.remember_me.as_ref().expect("checked");
        RealmPolicy {
            idle_timeout: Some(r.idle_timeout.0),
            max_lifetime: Some(r.max_lifetime.0),
            ..app.realm_policy(&realm)
        }
    });
    let request = PasswordLogin {
        realm: &realm,
        user,
        password: Password::new(password),
        module: form.module.as_deref(),
        source: None,
        client: client.ip(),
        policy,
        device,
    };
    let ticket_only = app.ticket_realm(&realm).is_some_and(|t| !t.with_session);
    if ticket_only {
        // Tickets instead of server-side sessions: authenticate, sign, done.
        let a = authenticate_password(app, request).await?;
        app.audit.emit(
            Event::new(Action::Login, Outcome::Success)
                .realm(&realm)
                .user(&a.identity.user)
                .source(&a.identity.source)
                .reason("ticket_only"),
        );
        let cookie = tickets::login_cookie(app, &realm, &a.identity, client.ip())
            .await?
            .expect("a ticket realm");
        let mut response = if wants_json(headers) {
            Json(view::ticket_login(&realm, &a.identity)).into_response()
        } else {
            see_other(next, "/")
        };
        response.headers_mut().insert(header::SET_COOKIE, cookie);
        return Ok(response);
    }
    let (token, record) = password_login(app, request).await?;
    let ticket_cookie = tickets::login_cookie(app, &realm, &record.identity, client.ip()).await?;
    // A persistent cookie only when asked to remember: otherwise the cookie
    // ends with the browser and the server-side limits end the session.
    let max_age = remember
        .then(|| record.expires_at.map(|end| now().seconds_until(end)))
        .flatten();
    let set_cookie = cookie::set(app.config.cookie(&realm), &token, max_age);
    let mut response = if wants_json(headers) {
        Json(view::session(&record)).into_response()
    } else {
        see_other(next, "/")
    };
    response
        .headers_mut()
        .insert(header::SET_COOKIE, set_cookie);
    if let Some(c) = ticket_cookie {
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    Ok(response)
}

/// `POST /session/logout`: ends the session server-side and clears the cookie.
pub async fn logout(
    State(app): State<Arc<App>>,
    _: SameOrigin,
    SessionCookie { realm, token }: SessionCookie,
    headers: HeaderMap,
) -> Result<Response, Error> {
    let cfg = app.config.cookie(&realm);
    if let Some(token) = token {
        // The cookie must not be cleared while the session lives on: a
        // store failure fails the logout.
        app.store
            .revoke(token.hash(), &realm, now())
            .await
            .map_err(Error::store("logout"))?;
        tracing::info!(realm, session = %token.hash().short(), "browser logout");
        app.audit.emit(
            Event::new(Action::Logout, Outcome::Success)
                .realm(&realm)
                .session(&token.hash()),
        );
    }
    let mut response = if wants_json(&headers) {
        Json(json!({"logged_out": true})).into_response()
    } else {
        let login = app.config.browser.login_url.clone();
        see_other(&login, "/login")
    };
    response
        .headers_mut()
        .insert(header::SET_COOKIE, cookie::clear(cfg));
    if let Some(tr) = app.ticket_realm(&realm) {
        response
            .headers_mut()
            .append(header::SET_COOKIE, cookie::clear_ticket(&tr.cookie));
    }
    Ok(response)
}

/// `GET /session/whoami`
pub async fn whoami(session: BrowserSession) -> Response {
    Json(view::session(&session.record)).into_response()
}

#[derive(Deserialize)]
pub struct KerberosQuery {
    next: Option<String>,
}

/// `GET /session/login_kerberos`: a browser session from SPNEGO. Without a
/// Negotiate header the answer is 401 `WWW-Authenticate: Negotiate`, which
/// makes a browser configured for the realm send its ticket.
pub async fn login_kerberos(
    State(app): State<Arc<App>>,
    client: Client,
    Realm(realm): Realm,
    NegotiateHeader(gss_token): NegotiateHeader,
    Device(device): Device,
    Query(q): Query<KerberosQuery>,
    headers: HeaderMap,
) -> Result<Response, Error> {
    if !app.config.negotiate_in(&realm) {
        return Err(Negotiate::NotEnabled.into());
    }
    let gss_token = gss_token.ok_or(Error::NegotiateNeeded)?;
    let next = origin::safe_next(&app, &headers, q.next.as_deref());
    kerberos_login(&app, &realm, gss_token, client, device, &next, &headers).await
}

/// A Negotiate login: the session, its cookie (and a ticket's), then 303
/// to `next` (JSON for XHR).
async fn kerberos_login(
    app: &App,
    realm: &str,
    gss_token: Result<Vec<u8>, ()>,
    client: Client,
    device: Option<String>,
    next: &str,
    headers: &HeaderMap,
) -> Result<Response, Error> {
    let session = negotiate::login(app, realm, gss_token, client.0, device, true).await?;
    let mut response = if wants_json(headers) {
        Json(view::session(&session.record)).into_response()
    } else {
        see_other(next, "/")
    };
    let h = response.headers_mut();
    h.insert(
        header::SET_COOKIE,
        cookie::set(
            app.config.cookie(realm),
            session.token.as_ref().expect("a stored session"),
            None,
        ),
    );
    if let Some(reply) = session.reply {
        h.insert(header::WWW_AUTHENTICATE, reply);
    }
    if let Some(c) =
        tickets::login_cookie(app, realm, &session.record.identity, client.ip()).await?
    {
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    Ok(response)
}

/// `GET /login`: the login form. Where the browser realm accepts
/// Negotiate, the form comes as a 401 with `WWW-Authenticate: Negotiate`:
/// a browser that holds a Kerberos ticket for the site answers the
/// challenge and is logged in and sent on without ever showing the form
/// (single sign-on); any other browser shows the form, the 401's body. A
/// ticket that does not log in gets the form (200, no challenge again).
pub async fn login_page(
    State(app): State<Arc<App>>,
    client: Client,
    NegotiateHeader(gss_token): NegotiateHeader,
    Device(device): Device,
    Query(q): Query<KerberosQuery>,
    headers: HeaderMap,
) -> Response {
    let realm = app.config.browser.realm.clone();
    let remember = app.config.browser.remember_me.is_some();
    let form = |status| page::login_page_with(remember, status, q.next.as_deref(), None);
    if !app.config.negotiate_in(&realm) {
        return form(StatusCode::OK);
    }
    let Some(gss_token) = gss_token else {
        let mut r = form(StatusCode::UNAUTHORIZED);
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, super::error::CHALLENGE);
        return r;
    };
    let next = origin::safe_next(&app, &headers, q.next.as_deref());
    match kerberos_login(&app, &realm, gss_token, client, device, &next, &headers).await {
        Ok(r) => r,
        // A multi-leg exchange goes on: the next challenge, the form as body.
        Err(Error::Negotiate(Negotiate::Continue(next_token))) => {
            let mut r = form(StatusCode::UNAUTHORIZED);
            r.headers_mut().insert(header::WWW_AUTHENTICATE, next_token);
            r
        }
        Err(e) => {
            e.report("/login");
            form(StatusCode::OK)
        }
    }
}
