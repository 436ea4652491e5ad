//! Forward auth (`GET /auth`) for nginx `auth_request`, Traefik ForwardAuth
//! and Caddy `forward_auth`: the access rules decide what the request
//! needs; a session cookie, a signed ticket or a Kerberos ticket says who
//! asks; the answer is 200 with the identity headers, 401 with where to log
//! in, or 403 when the rules keep this identity out.

use super::cookie;
use super::BrowserSession;
use crate::app::{App, Live};
use crate::http::error::{Error, Negotiate, CHALLENGE};
use crate::http::extract::{Activity, Client, Device, NegotiateHeader, Realm, SessionCookie};
use crate::http::{negotiate, tickets};
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sessiond_core::access::{
    normalize_host, normalize_path, split_url, Decision, Policy, Subjects, Target, Who,
};
use sessiond_core::Identity;
use std::net::IpAddr;
use std::sync::Arc;

/// Where the browser should go to log in (forward auth's hint to proxies).
pub const LOGIN_HEADER: &str = "x-sessiond-login";

/// The header naming the rule that decided, so an operator reading a
/// proxy's log (or `curl -i`) sees why.
pub const RULE_HEADER: &str = "x-sessiond-rule";

#[derive(Deserialize)]
pub struct AuthQuery {
    redirect: Option<String>,
    /// oauth2-proxy's per-location checks, comma-separated: the user passes
    /// when named in `allowed_users` or a member of one of `allowed_groups`
    /// (on top of what the rules say).
    allowed_users: Option<String>,
    allowed_groups: Option<String>,
}

impl AuthQuery {
    fn subjects(&self) -> Result<Subjects, Error> {
        let list = |key: &str, v: &Option<String>| {
            sessiond_core::names::parse_group_list(v.as_deref().unwrap_or(""))
                .map_err(|e| Error::BadRequest(format!("{key}: {e}")))
        };
        Ok(Subjects {
            users: list("allowed_users", &self.allowed_users)?,
            groups: list("allowed_groups", &self.allowed_groups)?,
        })
    }
}

/// The request the proxy asks about, from its forwarded headers.
///
/// Two families report it: `X-Original-URL` (+ `X-Original-Method`), which
/// the README's nginx sets, and `X-Forwarded-Proto/Host/Uri/Method`, which
/// Traefik and Caddy set. Each proxy sets its own family and passes the
/// other through from the client as it came — so where both are present
/// they must agree, or the request is refused: otherwise a client could
/// name the URL the rules check (a public one) while the proxy routes
/// another.
pub struct Original<'h> {
    original_url: Option<&'h str>,
    original_method: Option<&'h str>,
    forwarded_uri: Option<&'h str>,
    forwarded_host: Option<&'h str>,
    forwarded_proto: Option<&'h str>,
    forwarded_method: Option<&'h str>,
    host: Option<&'h str>,
}

/// The request as the rules see it.
struct Asked {
    host: Option<String>,
    path: String,
    method: Option<String>,
}

impl<'h> Original<'h> {
    pub fn read(headers: &'h HeaderMap) -> Original<'h> {
        let text = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
        Original {
            original_url: text("x-original-url"),
            original_method: text("x-original-method"),
            forwarded_uri: text("x-forwarded-uri").or_else(|| text("x-original-uri")),
            forwarded_host: text("x-forwarded-host"),
            forwarded_proto: text("x-forwarded-proto"),
            forwarded_method: text("x-forwarded-method"),
            host: text("host"),
        }
    }

    /// The whole URL, for the login page's way back.
    pub fn url(&self) -> Option<String> {
        if let Some(url) = self.original_url {
            return Some(url.to_owned());
        }
        let uri = self.forwarded_uri?;
        Some(match (self.forwarded_proto, self.forwarded_host) {
            (Some(proto), Some(host)) => format!("{proto}://{host}{uri}"),
            _ => uri.to_owned(),
        })
    }

    /// Host, normalised path and method, read strictly; a 400 naming the
    /// header when one cannot be read or two disagree.
    fn asked(&self) -> Result<Asked, Error> {
        let bad = |what: String| Error::BadRequest(what);
        let (host1, path1) = match self.original_url {
            Some(u) => {
                let (h, p) = split_url(u).map_err(|e| bad(format!("X-Original-URL: {e}")))?;
                (h, Some(p))
            }
            None => (None, None),
        };
        let path2 = match self.forwarded_uri {
            Some(u) => Some(
                normalize_path(u)
                    .map_err(|e| bad(format!("X-Forwarded-Uri: the original URL's path: {e}")))?,
            ),
            None => None,
        };
        let host2 = match self.forwarded_host {
            Some(h) => Some(normalize_host(h).ok_or_else(|| {
                bad("X-Forwarded-Host: not a host name with an optional numeric port".into())
            })?),
            None => None,
        };
        let disagree = |what: &str| {
            bad(format!(
                "{what} disagree (a client may have sent one of them): have the proxy set, \
                 or clear, both"
            ))
        };
        if let (Some(a), Some(b)) = (&path1, &path2) {
            if a != b {
                return Err(disagree("X-Original-URL's path and X-Forwarded-Uri"));
            }
        }
        if let (Some(a), Some(b)) = (&host1, &host2) {
            if a != b {
                return Err(disagree("X-Original-URL's host and X-Forwarded-Host"));
            }
        }
        let methods = (self.original_method, self.forwarded_method);
        if let (Some(a), Some(b)) = methods {
            if !a.eq_ignore_ascii_case(b) {
                return Err(disagree("X-Original-Method and X-Forwarded-Method"));
            }
        }
        let path = path1.or(path2).ok_or_else(|| {
            bad(
                "access rules are configured but the proxy passed no original URL \
                 (X-Original-URL, or X-Forwarded-Uri with X-Forwarded-Host)"
                    .into(),
            )
        })?;
        Ok(Asked {
            host: host1
                .or(host2)
                .or_else(|| self.host.and_then(normalize_host)),
            path,
            method: methods.0.or(methods.1).map(str::to_ascii_uppercase),
        })
    }
}

/// What the rules decide before anyone is identified (`None`: no rules,
/// every request needs a session, and the forwarded headers are read only
/// for the login page's way back, as before rules existed).
fn decide<'a>(
    live: &'a Live,
    original: &Original<'_>,
    client: Option<IpAddr>,
) -> Result<Option<Decision<'a>>, Error> {
    if live.access.is_trivial() {
        return Ok(None);
    }
    let asked = original.asked()?;
    Ok(Some(live.access.decide(&Target {
        host: asked.host.as_deref(),
        path: &asked.path,
        method: asked.method.as_deref(),
        client,
    })))
}

/// Who a forward-auth request speaks for, and a cookie to set with the
/// answer (a renewed ticket, or a session made from a Kerberos ticket).
struct Found {
    identity: Identity,
    set_cookie: Option<HeaderValue>,
}

/// `GET /auth`. 200 with the identity headers, 401 with where to log in
/// (`?redirect=1`, for Traefik and Caddy which pass the answer to the
/// browser: a 302 to the login page instead), or 403 when a rule keeps the
/// request out.
pub async fn forward_auth(
    State(app): State<Arc<App>>,
    asker: Asker,
    Query(q): Query<AuthQuery>,
    headers: HeaderMap,
) -> Response {
    let original = Original::read(&headers);
    // The rules as they are now: a reload during this request does not
    // change them under it.
    let live = app.live();
    let decided = decide(&live, &original, asker.client.ip());
    let rule = match &decided {
        Ok(Some(d)) => HeaderValue::from_str(d.name()).ok(),
        _ => None,
    };
    let answered = match (decided, q.subjects()) {
        (Ok(decision), Ok(extra)) => {
            let redirect = q.redirect.is_some();
            answer(&app, asker, &headers, &original, decision, extra, redirect).await
        }
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    let mut r = answered.unwrap_or_else(IntoResponse::into_response);
    // Every answer names the rule that decided (the renderers keep it).
    if let Some(v) = rule {
        r.headers_mut().insert(RULE_HEADER, v);
    }
    r
}

/// What a forward-auth request brings to identify its user: read up front,
/// checked only when the rules need a session.
pub struct Asker {
    client: Client,
    realm: String,
    cookie: SessionCookie,
    activity: sessiond_store::Access,
    gss_token: Option<Result<Vec<u8>, ()>>,
    device: Option<String>,
}

impl FromRequestParts<Arc<App>> for Asker {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &Arc<App>,
    ) -> Result<Self, Self::Rejection> {
        let client = Client::from_request_parts(parts, app).await?;
        let Realm(realm) = Realm::from_request_parts(parts, app).await?;
        let cookie = SessionCookie::from_request_parts(parts, app).await?;
        let Activity(activity) = Activity::from_request_parts(parts, app).await?;
        let NegotiateHeader(gss_token) = NegotiateHeader::from_request_parts(parts, app).await?;
        let Device(device) = Device::from_request_parts(parts, app).await?;
        Ok(Asker {
            client,
            realm,
            cookie,
            activity,
            gss_token,
            device,
        })
    }
}

async fn answer(
    app: &App,
    asker: Asker,
    headers: &HeaderMap,
    original: &Original<'_>,
    decision: Option<Decision<'_>>,
    extra: Subjects,
    redirect: bool,
) -> Result<Response, Error> {
    let Asker {
        client,
        realm,
        cookie,
        activity,
        gss_token,
        device,
    } = asker;
    match decision.as_ref().map(|d| d.policy) {
        Some(Policy::Public) if extra.is_empty() => {
            return Ok(StatusCode::OK.into_response());
        }
        Some(Policy::Deny) => {
            let d = decision.as_ref().expect("matched");
            return Err(Error::NotAllowed {
                user: None,
                rule: d.label().to_owned(),
                why: "the rule denies everyone".into(),
            });
        }
        _ => {}
    }
    // 1. The session cookie (a store failure ends it here: never a fallback).
    let (mut found, ended) = match BrowserSession::check(app, cookie, activity).await {
        Ok(s) => (
            Some(Found {
                identity: s.record.identity,
                set_cookie: None,
            }),
            false,
        ),
        Err(Error::LoginRequired { ended }) => (None, ended),
        Err(e) => return Err(e),
    };
    // 2. A valid signed ticket: no store write at all (one read, of the
    //    user's not-before time).
    if found.is_none() {
        match tickets::check_request(app, &realm, headers, client.ip()).await? {
            Ok(holder) => {
                found = Some(Found {
                    identity: holder.identity(),
                    set_cookie: holder.renewed,
                })
            }
            Err(tickets::Refused::Missing) => {}
            Err(refused) => tracing::debug!(realm, reason = %refused, "ticket refused"),
        }
    }
    // 3. A Kerberos ticket: let it in, and (if configured) give it a
    //    session cookie so the next request is a cheap check.
    if let (None, Some(gss_token)) = (&found, gss_token) {
        let with_cookie = app.config.kerberos.auth_sets_cookie;
        match negotiate::login(app, &realm, gss_token, client.0, device, with_cookie).await {
            Ok(s) => {
                found = Some(Found {
                    set_cookie: s
                        .token
                        .as_ref()
                        .map(|t| cookie::set(app.config.cookie(&realm), t, None)),
                    identity: s.record.identity,
                })
            }
            Err(Error::Negotiate(Negotiate::NotEnabled)) => {}
            Err(e) => return Err(e),
        }
    }
    let Some(found) = found else {
        return Ok(to_login(app, &realm, original, redirect, ended));
    };
    // 4. May this identity reach this request?
    let who = Who {
        user: &found.identity.user,
        groups: &found.identity.groups,
        realm: &realm,
        source: &found.identity.source,
    };
    let refused = |rule: &str, why: String| Error::NotAllowed {
        user: Some(found.identity.user.clone()),
        rule: rule.to_owned(),
        why,
    };
    if let Some(d) = &decision {
        if let Err(why) = d.policy.admits(&who) {
            return Err(refused(d.label(), why));
        }
    }
    if !extra.admits(&who) {
        return Err(refused(
            "the allowed_users/allowed_groups parameters",
            format!("{} is not one of {extra}", who.user),
        ));
    }
    identity_headers(app, &realm, found)
}

/// 200 with the identity in the configured headers.
fn identity_headers(app: &App, realm: &str, found: Found) -> Result<Response, Error> {
    let b = &app.config.browser;
    let mut r = StatusCode::OK.into_response();
    let h = r.headers_mut();
    if let Some(c) = found.set_cookie {
        h.insert(header::SET_COOKIE, c);
    }
    let identity = &found.identity;
    // Group names never hold a comma (they are checked where they enter an
    // identity), so the list reads back unambiguously.
    let groups = identity.groups.join(",");
    for (name, value) in [
        (&b.user_header, identity.user.as_str()),
        (&b.realm_header, realm),
        (&b.source_header, identity.source.as_str()),
        (&b.groups_header, groups.as_str()),
    ] {
        // UTF-8 names travel as the raw bytes (obs-text), as proxies pass
        // them; what no header can carry (a control character, which login
        // and ticket checks already refuse) ends in a refusal, never in a
        // 200 without the identity.
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) {
            (Ok(n), Ok(v)) => {
                h.insert(n, v);
            }
            _ => {
                tracing::warn!(realm, header = %name, "identity cannot be passed on in a header: access refused");
                return Err(Error::UnheaderableIdentity);
            }
        }
    }
    Ok(r)
}

/// No identity: 401 `login-required` with where to log in (and the
/// Negotiate challenge where Kerberos is accepted), or with `redirect` a
/// 302 to the login page.
fn to_login(
    app: &App,
    realm: &str,
    original: &Original<'_>,
    redirect: bool,
    ended: bool,
) -> Response {
    let b = &app.config.browser;
    let login = match &original.url() {
        Some(url) => format!(
            "{}?next={}",
            b.login_url,
            percent_encoding::utf8_percent_encode(url, percent_encoding::NON_ALPHANUMERIC)
        ),
        None => b.login_url.clone(),
    };
    let mut r = Error::LoginRequired { ended }.into_response();
    let Ok(location) = HeaderValue::from_str(&login) else {
        return r;
    };
    if redirect {
        return (StatusCode::FOUND, [(header::LOCATION, location)]).into_response();
    }
    r.headers_mut().insert(LOGIN_HEADER, location);
    if app.config.negotiate_in(realm) {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, CHALLENGE);
    }
    r
}
