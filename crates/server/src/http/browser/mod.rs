//! Browser sessions: the login form and page, logout, whoami, and forward
//! auth for reverse proxies (`GET /auth`). The session lives server-side in
//! the store; the cookie holds only the token.

mod cookie;
mod origin;
mod page;
mod sessions;

use super::negotiate;
use super::tickets;
use super::ClientAddr;
use crate::app::App;
use crate::clock::now;
use crate::login::{authenticate_password, password_login, LoginError, PasswordLogin};
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;
use sessiond_auth::Password;
use sessiond_core::session::{SessionRecord, Validity};
use sessiond_core::{RealmPolicy, Token};
use std::sync::Arc;

pub use page::{login_page, script};
pub use sessions::{end as end_session, end_others as end_other_sessions, list as sessions_page};

/// Header naming why a request was refused, for the JS helper: FreeIPA's UI
/// keyed its login-and-retry on such a header rather than on the status alone.
pub const REASON_HEADER: &str = "x-sessiond-reason";
/// Where the browser should go to log in (forward auth's hint to proxies).
pub const LOGIN_HEADER: &str = "x-sessiond-login";

/// Whether the caller wants JSON (an XHR/fetch) rather than a page.
fn wants_json(headers: &HeaderMap) -> bool {
    let text = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
    text("x-requested-with").eq_ignore_ascii_case("xmlhttprequest")
        || (text("accept").contains("application/json") && !text("accept").contains("text/html"))
}

fn no_store(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn json_error(status: StatusCode, code: &str, message: &str) -> Response {
    let mut r = (status, Json(json!({"error": code, "message": message}))).into_response();
    if let Ok(v) = HeaderValue::from_str(code) {
        r.headers_mut().insert(REASON_HEADER, v);
    }
    no_store(r)
}

/// 503 for a store failure: counted and logged like every other store
/// error (`sessiond_store_errors_total{op}`), nothing of it shown.
fn store_unavailable(op: &'static str, e: impl std::fmt::Display) -> Response {
    metrics::counter!("sessiond_store_errors_total", "op" => op).increment(1);
    tracing::error!(op, error = %e, "session store error");
    json_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "store_unavailable",
        "the session store is unavailable; try again",
    )
}

/// 303 to `target` (a path or a checked URL), `fallback` if it cannot be a
/// header value.
fn see_other(target: &str, fallback: &'static str) -> Response {
    let location = HeaderValue::from_str(target).unwrap_or(HeaderValue::from_static(fallback));
    (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
}

fn forbidden(headers: &HeaderMap, reason: &str) -> Response {
    if wants_json(headers) {
        json_error(StatusCode::FORBIDDEN, "csrf", reason)
    } else {
        no_store(
            (
                StatusCode::FORBIDDEN,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                format!("403 Forbidden: {reason}\n"),
            )
                .into_response(),
        )
    }
}

/// A short description of the browser, from its User-Agent (at most 160
/// characters: the listing needs a hint, not a fingerprint).
fn device(headers: &HeaderMap) -> Option<String> {
    let ua = headers.get(header::USER_AGENT)?.to_str().ok()?.trim();
    if ua.is_empty() {
        return None;
    }
    Some(ua.chars().filter(|c| !c.is_control()).take(160).collect())
}

/// The session's view for whoami and the login answer.
fn identity_json(record: &SessionRecord) -> serde_json::Value {
    json!({
        "user": record.identity.user,
        "realm": record.realm,
        "source": record.identity.source,
        "created": record.created.0,
        "last_access": record.last_access.0,
        "expires_at": record.ends_at().map(|t| t.0),
    })
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
    client: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(reason) = origin::check_post(&app, &headers) {
        return forbidden(&headers, reason);
    }
    let form: LoginForm = match serde_urlencoded::from_bytes::<LoginForm>(&body) {
        Ok(f) => f,
        Err(e) => {
            return json_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &format!("send a form (application/x-www-form-urlencoded): {e}"),
            )
        }
    };
    let realm = app.config.browser.realm_or_default(form.realm.clone());
    let next = origin::safe_next(&app, &headers, form.next.as_deref());
    let (Some(user), Some(password)) = (form.user.as_deref(), form.password.clone()) else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the form needs user and password",
        );
    };
    let remember = form.remember.is_some() && app.config.browser.remember_me.is_some();
    let policy = remember.then(|| {
        let r = app.config.browser.remember_me.as_ref().expect("checked");
        RealmPolicy {
            idle_timeout: Some(r.idle_timeout.0),
            max_lifetime: Some(r.max_lifetime.0),
            ..app.config.realm_policy(&realm)
        }
    });
    let request = PasswordLogin {
        realm: &realm,
        user,
        password: Password::new(password),
        module: form.module.as_deref(),
        source: None,
        client: client.map(|c| c.client),
        policy,
        device: device(&headers),
    };
    let client_ip = request.client;
    let ticket_only = app.tickets.get(&realm).is_some_and(|t| !t.with_session);
    if ticket_only {
        // Tickets instead of server-side sessions: authenticate, sign, done.
        let a = match authenticate_password(&app, request).await {
            Ok(a) => a,
            Err(e) => return login_failed(&app, &headers, e, &next),
        };
        let cookie = match tickets::login_cookie(&app, &realm, &a.identity.user, client_ip).await {
            Ok(c) => c.expect("a ticket realm"),
            Err(e) => return ticket_issue_failed(e),
        };
        let mut response = if wants_json(&headers) {
            Json(json!({
                "user": a.identity.user,
                "realm": realm,
                "source": a.identity.source,
                "ticket": true,
            }))
            .into_response()
        } else {
            see_other(&next, "/")
        };
        response.headers_mut().insert(header::SET_COOKIE, cookie);
        return no_store(response);
    }
    let (token, record) = match password_login(&app, request).await {
        Ok(v) => v,
        Err(e) => return login_failed(&app, &headers, e, &next),
    };
    let ticket_cookie =
        match tickets::login_cookie(&app, &realm, &record.identity.user, client_ip).await {
            Ok(c) => c,
            Err(e) => return ticket_issue_failed(e),
        };
    let cookie_cfg = app.config.cookie(&realm);
    // A persistent cookie only when asked to remember: otherwise the cookie
    // ends with the browser and the server-side limits end the session.
    let max_age = remember
        .then(|| record.expires_at.map(|end| now().seconds_until(end)))
        .flatten();
    let set_cookie = cookie::set(cookie_cfg, &token, max_age);
    let mut response = if wants_json(&headers) {
        Json(identity_json(&record)).into_response()
    } else {
        see_other(&next, "/")
    };
    response
        .headers_mut()
        .insert(header::SET_COOKIE, set_cookie);
    if let Some(c) = ticket_cookie {
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    no_store(response)
}

fn ticket_issue_failed(e: tickets::IssueError) -> Response {
    match e {
        tickets::IssueError::Store(e) => store_unavailable("ticket_not_before", e),
        tickets::IssueError::Ticket(e) => json_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &format!("no ticket can be issued for this user: {e}"),
        ),
    }
}

fn login_failed(app: &App, headers: &HeaderMap, e: LoginError, next: &str) -> Response {
    let (status, code, message) = match &e {
        LoginError::Rejected | LoginError::UnknownModule(_) => (
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "wrong user name or password".to_owned(),
        ),
        LoginError::Refused(reason) => (
            StatusCode::UNAUTHORIZED,
            reason.code(),
            match reason {
                sessiond_auth::Refusal::PasswordExpired => {
                    "your password has expired: change it, then log in".to_owned()
                }
                sessiond_auth::Refusal::AccountDisabled => "this account is disabled".to_owned(),
                _ => "wrong user name or password".to_owned(),
            },
        ),
        LoginError::BadRequest(m) => (StatusCode::BAD_REQUEST, "invalid_request", m.clone()),
        LoginError::RateLimited { .. } => (
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            "too many failed logins; wait a few minutes".to_owned(),
        ),
        LoginError::AuthUnavailable | LoginError::Store(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "login is unavailable right now; try again".to_owned(),
        ),
    };
    let mut r = if wants_json(headers) {
        json_error(status, code, &message)
    } else {
        page::login_page_with(app, status, Some(next), Some(&message))
    };
    if let LoginError::RateLimited { retry_after, .. } = e {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    }
    r
}

/// `POST /session/logout`: ends the session server-side and clears the cookie.
pub async fn logout(
    State(app): State<Arc<App>>,
    Query(q): Query<RealmQuery>,
    headers: HeaderMap,
) -> Response {
    if let Err(reason) = origin::check_post(&app, &headers) {
        return forbidden(&headers, reason);
    }
    let realm = app.config.browser.realm_or_default(q.realm);
    let cfg = app.config.cookie(&realm);
    if let Some(token) = cookie::session_token(&headers, cfg) {
        if let Err(e) = app.store.revoke(token.hash(), &realm, now()).await {
            // The cookie must not be cleared while the session lives on.
            return store_unavailable("logout", e);
        }
        tracing::info!(realm, session = %token.hash().short(), "browser logout");
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
    if let Some(tr) = app.tickets.get(&realm) {
        response
            .headers_mut()
            .append(header::SET_COOKIE, tr.clear_cookie());
    }
    no_store(response)
}

#[derive(Deserialize)]
pub struct RealmQuery {
    realm: Option<String>,
    passive: Option<String>,
}

/// Whether a check must not count as activity: `?passive=1` (a proxy route
/// for polling) or the header `X-Sessiond-Passive: 1` (sessiond.js's
/// `{passive: true}`), so background polling cannot keep an abandoned
/// session alive.
fn is_passive(headers: &HeaderMap, query: Option<&str>) -> bool {
    let on = |v: &str| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false");
    query.is_some_and(on)
        || headers
            .get("x-sessiond-passive")
            .and_then(|v| v.to_str().ok())
            .is_some_and(on)
}

/// The current session of the cookie, or why there is none.
async fn current(
    app: &App,
    headers: &HeaderMap,
    realm: &str,
) -> Result<(Token, SessionRecord), Response> {
    check_session(app, headers, realm, false).await
}

/// [`current`], optionally without counting as activity.
async fn check_session(
    app: &App,
    headers: &HeaderMap,
    realm: &str,
    passive: bool,
) -> Result<(Token, SessionRecord), Response> {
    let Some(token) = cookie::session_token(headers, app.config.cookie(realm)) else {
        return Err(json_error(
            StatusCode::UNAUTHORIZED,
            "login-required",
            "no session: log in",
        ));
    };
    let checked = if passive {
        app.store.peek(token.hash(), realm, now()).await
    } else {
        app.store.validate(token.hash(), realm, now()).await
    };
    match checked {
        Ok(Validity::Current(record)) => Ok((token, record)),
        Ok(_) => Err(json_error(
            StatusCode::UNAUTHORIZED,
            "login-required",
            "the session has ended: log in again",
        )),
        Err(e) => Err(store_unavailable("validate", e)),
    }
}

/// `GET /session/whoami`
pub async fn whoami(
    State(app): State<Arc<App>>,
    Query(q): Query<RealmQuery>,
    headers: HeaderMap,
) -> Response {
    let realm = app.config.browser.realm_or_default(q.realm);
    let passive = is_passive(&headers, q.passive.as_deref());
    match check_session(&app, &headers, &realm, passive).await {
        Ok((_, record)) => no_store(Json(identity_json(&record)).into_response()),
        Err(r) => r,
    }
}

/// The URL the browser asked the proxy for, as proxies report it.
fn original_url(headers: &HeaderMap) -> Option<String> {
    let text = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    if let Some(url) = text("x-original-url") {
        return Some(url.to_owned());
    }
    let uri = text("x-forwarded-uri").or_else(|| text("x-original-uri"))?;
    match (text("x-forwarded-proto"), text("x-forwarded-host")) {
        (Some(proto), Some(host)) => Some(format!("{proto}://{host}{uri}")),
        _ => Some(uri.to_owned()),
    }
}

/// `GET /auth`: forward auth for nginx `auth_request`, Traefik ForwardAuth
/// and Caddy `forward_auth`. 200 with the identity headers, or 401 with
/// where to log in. With `?redirect=1` (Traefik, Caddy: they pass the answer
/// to the browser) a missing session answers 302 to the login page instead.
pub async fn forward_auth(
    State(app): State<Arc<App>>,
    client: Option<Extension<ClientAddr>>,
    Query(q): Query<AuthQuery>,
    headers: HeaderMap,
) -> Response {
    let realm = app.config.browser.realm_or_default(q.realm);
    let b = &app.config.browser;
    let passive = is_passive(&headers, q.passive.as_deref());
    let client_ip = client.map(|c| c.client);
    let mut checked = check_session(&app, &headers, &realm, passive)
        .await
        .map(|(_, record)| (record.identity, None));
    // No session, but a valid signed ticket: no store write at all (one
    // read, of the user's not-before time).
    if matches!(&checked, Err(r) if r.status() == StatusCode::UNAUTHORIZED) {
        match tickets::check_request(&app, &realm, &headers, client_ip).await {
            Ok(holder) => {
                checked = Ok((holder.identity(), holder.renewed));
            }
            Err(tickets::Refused::Store(e)) => return store_unavailable("ticket_not_before", e),
            Err(tickets::Refused::Missing) => {}
            Err(refused) => {
                tracing::debug!(realm, reason = %refused.reason(), "ticket refused");
            }
        }
    }
    // No session, but a Kerberos ticket: let it in, and (if configured)
    // give it a session cookie so the next request is a cheap check.
    if matches!(&checked, Err(r) if r.status() == StatusCode::UNAUTHORIZED) {
        if let Some(gss_token) = negotiate::token(&headers) {
            let with_cookie = app.config.kerberos.auth_sets_cookie;
            match negotiate::login(
                &app,
                &realm,
                gss_token,
                client.map(|c| c.0),
                device(&headers),
                with_cookie,
            )
            .await
            {
                Ok(s) => {
                    let cookie = s
                        .token
                        .as_ref()
                        .map(|t| cookie::set(app.config.cookie(&realm), t, None));
                    checked = Ok((s.record.identity, cookie));
                }
                Err(negotiate::Failure::NotEnabled) => {}
                Err(f) => return negotiate_failed(&headers, f),
            }
        }
    }
    match checked {
        Ok((identity, set_cookie)) => {
            let mut r = StatusCode::OK.into_response();
            if let Some(c) = set_cookie {
                r.headers_mut().insert(header::SET_COOKIE, c);
            }
            let h = r.headers_mut();
            for (name, value) in [
                (&b.user_header, &identity.user),
                (&b.realm_header, &realm),
                (&b.source_header, &identity.source),
            ] {
                // UTF-8 names travel as the raw bytes (obs-text), as proxies
                // pass them; what no header can carry (a control character,
                // which login and ticket checks already refuse) ends in a
                // refusal, never in a 200 without the identity: an
                // application behind the proxy would take that for "no user
                // header configured" or, worse, trust a client-sent one.
                match (
                    HeaderName::from_bytes(name.as_bytes()),
                    HeaderValue::from_bytes(value.as_bytes()),
                ) {
                    (Ok(n), Ok(v)) => {
                        h.insert(n, v);
                    }
                    _ => {
                        tracing::warn!(realm, header = %name, "identity cannot be passed on in a header: access refused");
                        return no_store(
                            (
                                StatusCode::FORBIDDEN,
                                "the identity cannot be passed on in a header",
                            )
                                .into_response(),
                        );
                    }
                }
            }
            no_store(r)
        }
        Err(mut r) if r.status() == StatusCode::UNAUTHORIZED => {
            let login = match original_url(&headers) {
                Some(url) => format!(
                    "{}?next={}",
                    b.login_url,
                    percent_encoding::utf8_percent_encode(&url, percent_encoding::NON_ALPHANUMERIC)
                ),
                None => b.login_url.clone(),
            };
            let Ok(location) = HeaderValue::from_str(&login) else {
                return r;
            };
            if q.redirect.is_some() {
                r = (StatusCode::FOUND, [(header::LOCATION, location)]).into_response();
                return no_store(r);
            }
            r.headers_mut().insert(LOGIN_HEADER, location);
            if app.config.negotiate_in(&realm) {
                r.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, negotiate::CHALLENGE);
            }
            r
        }
        Err(r) => r,
    }
}

#[derive(Deserialize)]
pub struct AuthQuery {
    realm: Option<String>,
    redirect: Option<String>,
    passive: Option<String>,
}

#[derive(Deserialize)]
pub struct KerberosQuery {
    realm: Option<String>,
    next: Option<String>,
}

/// A 401 that asks the browser for Kerberos (`WWW-Authenticate: Negotiate`).
fn negotiate_challenge(headers: &HeaderMap, message: &str) -> Response {
    let mut r = json_error(StatusCode::UNAUTHORIZED, "negotiate", message);
    if !wants_json(headers) {
        r = no_store(
            (
                StatusCode::UNAUTHORIZED,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                format!("401 Unauthorized: {message}\n"),
            )
                .into_response(),
        );
    }
    r.headers_mut()
        .insert(header::WWW_AUTHENTICATE, negotiate::CHALLENGE);
    r
}

fn negotiate_failed(headers: &HeaderMap, failure: negotiate::Failure) -> Response {
    use negotiate::Failure;
    match failure {
        Failure::NotEnabled => json_error(
            StatusCode::NOT_FOUND,
            "not_enabled",
            "Kerberos login is not enabled (kerberos.negotiate)",
        ),
        Failure::Refused(reason) => {
            tracing::info!(%reason, "Negotiate refused");
            negotiate_challenge(headers, "the Kerberos token was not accepted")
        }
        Failure::Continue(challenge) => {
            let mut r = negotiate_challenge(headers, "the Negotiate exchange continues");
            r.headers_mut().insert(header::WWW_AUTHENTICATE, challenge);
            r
        }
        Failure::Unavailable(reason) => {
            tracing::error!(%reason, "Negotiate unavailable");
            json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Kerberos is unavailable right now; try again",
            )
        }
        Failure::Login(LoginError::Store(e)) => store_unavailable("create", e),
        Failure::Login(e) => json_error(StatusCode::BAD_REQUEST, "invalid_request", &e.to_string()),
    }
}

/// `GET /session/login_kerberos`: a browser session from SPNEGO. Without a
/// Negotiate header the answer is 401 `WWW-Authenticate: Negotiate`, which
/// makes a browser configured for the realm send its ticket.
pub async fn login_kerberos(
    State(app): State<Arc<App>>,
    client: Option<Extension<ClientAddr>>,
    Query(q): Query<KerberosQuery>,
    headers: HeaderMap,
) -> Response {
    let realm = app.config.browser.realm_or_default(q.realm);
    if !app.config.negotiate_in(&realm) {
        return negotiate_failed(&headers, negotiate::Failure::NotEnabled);
    }
    let Some(gss_token) = negotiate::token(&headers) else {
        return negotiate_challenge(&headers, "log in with Kerberos (Negotiate)");
    };
    let client_ip = client.map(|c| c.client);
    let session = match negotiate::login(
        &app,
        &realm,
        gss_token,
        client.map(|c| c.0),
        device(&headers),
        true,
    )
    .await
    {
        Ok(s) => s,
        Err(f) => return negotiate_failed(&headers, f),
    };
    let next = origin::safe_next(&app, &headers, q.next.as_deref());
    let mut response = if wants_json(&headers) {
        Json(identity_json(&session.record)).into_response()
    } else {
        see_other(&next, "/")
    };
    let h = response.headers_mut();
    h.insert(
        header::SET_COOKIE,
        cookie::set(
            app.config.cookie(&realm),
            session.token.as_ref().expect("a stored session"),
            None,
        ),
    );
    if let Some(reply) = session.reply {
        h.insert(header::WWW_AUTHENTICATE, reply);
    }
    match tickets::login_cookie(&app, &realm, &session.record.identity.user, client_ip).await {
        Ok(Some(c)) => {
            response.headers_mut().append(header::SET_COOKIE, c);
        }
        Ok(None) => {}
        Err(e) => return ticket_issue_failed(e),
    }
    no_store(response)
}
