//! Tickets over HTTP: checking one in a request (with the per-user
//! not-before time from the store), issuing one at login, and
//! plone.session's refresh and remove resources. (The admin revocation
//! endpoints are with the other admin handlers, in `admin.rs`; the cookie
//! itself is read and written in `browser/cookie.rs`.)

use super::browser::cookie;
use super::error::Error;
use super::extract::{Client, Realm};
use crate::app::App;
use crate::clock::now;
use crate::tickets::TicketRealm;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sessiond_core::ticket::{Ticket, TicketError};
use sessiond_core::{Identity, Timestamp};
use std::net::IpAddr;
use std::sync::Arc;

/// Why a ticket was not accepted (not an error of the request: the caller
/// goes on as if there were no ticket).
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// No ticket cookie in the request.
    #[error("no ticket")]
    Missing,
    #[error("{0}")]
    Invalid(TicketError),
    /// Issued before the user's tickets were revoked.
    #[error("the user's tickets were revoked after this one was issued")]
    Revoked,
}

/// A ticket the request carried, accepted.
pub struct Holder {
    pub ticket: Ticket,
    /// A re-issued ticket to send back, when the refresh rule says so.
    pub renewed: Option<HeaderValue>,
    /// The user's not-before time as read for the check, so a re-issue
    /// needs no second store read.
    not_before: Option<Timestamp>,
}

impl Holder {
    /// Who the ticket speaks for, in the terms of a session's identity:
    /// its tokens are its groups (mod_auth_tkt's `TKTAuthToken`).
    pub fn identity(&self) -> Identity {
        Identity::new(self.ticket.user.clone(), "ticket")
            .with_groups(self.ticket.tokens.iter().cloned())
    }
}

/// Checks a ticket cookie value in `tr`'s realm: signature, time, and the
/// user's not-before time in the store. Only a store failure is an error.
pub async fn check_value(
    app: &App,
    tr: &TicketRealm,
    value: &str,
    client: Option<IpAddr>,
    renew: bool,
) -> Result<Result<Holder, Refused>, Error> {
    let t = now();
    let accepted = match tr.check(value, client, t.0) {
        Ok(a) => a,
        Err(e) => {
            metrics::counter!("sessiond_tickets_total", "result" => "refused").increment(1);
            return Ok(Err(Refused::Invalid(e)));
        }
    };
    let not_before = app
        .store
        .tickets
        .ticket_not_before(&tr.realm, &accepted.ticket.user)
        .await
        .map_err(Error::store("ticket_not_before"))?;
    if not_before.is_some_and(|nb| i64::from(accepted.ticket.issued) < nb.0) {
        metrics::counter!("sessiond_tickets_total", "result" => "revoked").increment(1);
        return Ok(Err(Refused::Revoked));
    }
    metrics::counter!("sessiond_tickets_total", "result" => "accepted").increment(1);
    let mut holder = Holder {
        ticket: accepted.ticket,
        renewed: None,
        not_before,
    };
    if renew && accepted.refresh {
        holder.renewed = reissue(tr, &holder, client)
            .ok()
            .map(|v| cookie::set_ticket(&tr.cookie, &v));
    }
    Ok(Ok(holder))
}

/// A fresh ticket (cookie value) with the same user, tokens and data as an
/// accepted one.
pub fn reissue(
    tr: &TicketRealm,
    holder: &Holder,
    client: Option<IpAddr>,
) -> Result<String, TicketError> {
    let t = &holder.ticket;
    sign_now(
        tr,
        &t.user,
        &t.user_data,
        &t.tokens,
        client,
        holder.not_before,
    )
}

/// The ticket of `realm` the request carries, checked.
pub async fn check_request(
    app: &App,
    realm: &str,
    headers: &HeaderMap,
    client: Option<IpAddr>,
) -> Result<Result<Holder, Refused>, Error> {
    let Some(tr) = app.ticket_realm(realm) else {
        return Ok(Err(Refused::Missing));
    };
    let Some(value) = cookie::ticket_value(&tr.cookie, headers) else {
        return Ok(Err(Refused::Missing));
    };
    check_value(app, &tr, value, client, true).await
}

/// A new ticket cookie value for `user`. Its issue time is never before the
/// user's not-before time, so a login right after a revocation (same second)
/// is not refused by it.
pub async fn issue_value(
    app: &App,
    tr: &TicketRealm,
    user: &str,
    user_data: &str,
    tokens: &[String],
    client: Option<IpAddr>,
) -> Result<String, Error> {
    let not_before = app
        .store
        .tickets
        .ticket_not_before(&tr.realm, user)
        .await
        .map_err(Error::store("ticket_not_before"))?;
    Ok(sign_now(tr, user, user_data, tokens, client, not_before)?)
}

/// Signs a ticket dated now, or at the user's not-before time if that is
/// later (a login in the same second as a revocation).
fn sign_now(
    tr: &TicketRealm,
    user: &str,
    user_data: &str,
    tokens: &[String],
    client: Option<IpAddr>,
    not_before: Option<Timestamp>,
) -> Result<String, TicketError> {
    let issued = now().0.max(not_before.map_or(0, |t| t.0));
    let issued = u32::try_from(issued).map_err(|_| TicketError::Unsignable {
        field: "timestamp",
        reason: "is beyond 2106",
    })?;
    metrics::counter!("sessiond_tickets_issued_total").increment(1);
    tr.issue(user, user_data, tokens, client, issued)
}

/// `Set-Cookie` with a login ticket for `user` in `realm`, if it is a ticket realm.
pub async fn login_cookie(
    app: &App,
    realm: &str,
    identity: &Identity,
    client: Option<IpAddr>,
) -> Result<Option<HeaderValue>, Error> {
    let Some(tr) = app.ticket_realm(realm) else {
        return Ok(None);
    };
    let user = identity.user.as_str();
    let value = issue_value(app, &tr, user, "", &login_tokens(&tr, identity), client).await?;
    tracing::info!(realm, user, "ticket issued");
    Ok(Some(cookie::set_ticket(&tr.cookie, &value)))
}

/// The tokens of a ticket issued at login: the realm's fixed tokens, then
/// the user's groups — a ticket carries its groups as tokens, so
/// mod_auth_tkt's `TKTAuthToken ops` checks them. (Group names are already
/// free of the ticket's `,`; a `!` would break the format, so such a group
/// stays out of the ticket.)
pub fn login_tokens(tr: &TicketRealm, identity: &Identity) -> Vec<String> {
    let mut tokens = tr.tokens.clone();
    for g in &identity.groups {
        if g.contains('!') {
            tracing::warn!(realm = %tr.realm, group = %g, "group name contains '!': not carried in the ticket");
        } else if !tokens.contains(g) {
            tokens.push(g.clone());
        }
    }
    tokens
}

#[derive(Deserialize)]
pub struct ResourceQuery {
    /// What the page loads the resource as: `css` (default), `gif` or `js`.
    r#type: Option<String>,
}

/// A transparent 1×1 GIF, for pages that load the resource as an image.
const EMPTY_GIF: &[u8] = b"GIF89a\x01\x00\x01\x00\xf0\x01\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\n\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;";

fn resource(kind: Option<&str>) -> Result<Response, Error> {
    Ok(match kind.unwrap_or("css") {
        "css" => ([(header::CONTENT_TYPE, "text/css")], "").into_response(),
        "js" => ([(header::CONTENT_TYPE, "text/javascript")], "").into_response(),
        "gif" => ([(header::CONTENT_TYPE, "image/gif")], EMPTY_GIF).into_response(),
        other => {
            return Err(Error::BadRequest(format!(
                "type: {other:?} is not css, gif or js"
            )))
        }
    })
}

pub(super) fn ticket_realm(app: &App, realm: &str) -> Result<Arc<TicketRealm>, Error> {
    app.ticket_realm(realm)
        .ok_or_else(|| Error::NotATicketRealm(realm.to_owned()))
}

/// `GET /ticket/refresh`: plone.session's refresh resource. A page loads it
/// (as CSS, an image or a script); for a holder of a valid ticket it
/// re-issues the cookie, and its `max-age` decides how often the browser
/// comes back.
pub async fn refresh(
    State(app): State<Arc<App>>,
    client: Client,
    Realm(realm): Realm,
    Query(q): Query<ResourceQuery>,
    headers: HeaderMap,
) -> Result<Response, Error> {
    let tr = ticket_realm(&app, &realm)?;
    let mut response = resource(q.r#type.as_deref())?;
    let client = client.ip();
    let holder = match cookie::ticket_value(&tr.cookie, &headers) {
        Some(value) => check_value(&app, &tr, value, client, false).await?.ok(),
        None => None,
    };
    let h = response.headers_mut();
    h.insert(
        header::EXPIRES,
        HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT"),
    );
    let max_age = tr.refresh_max_age;
    match holder {
        Some(holder) => {
            let value = reissue(&tr, &holder, client)?;
            let h = response.headers_mut();
            h.insert(header::SET_COOKIE, cookie::set_ticket(&tr.cookie, &value));
            h.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_str(&format!(
                    "private, must-revalidate, proxy-revalidate, max-age={max_age}, s-maxage=0"
                ))
                .expect("ASCII"),
            );
        }
        None => {
            h.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_str(&format!(
                    "public, must-revalidate, max-age={max_age}, s-maxage=86400"
                ))
                .expect("ASCII"),
            );
            h.insert(header::VARY, HeaderValue::from_static("Cookie"));
        }
    }
    Ok(response)
}

/// `GET /ticket/remove`: removes the ticket cookie (load it from every
/// domain's logged-out page to log out across domains).
pub async fn remove(
    State(app): State<Arc<App>>,
    Realm(realm): Realm,
    Query(q): Query<ResourceQuery>,
) -> Result<Response, Error> {
    let tr = ticket_realm(&app, &realm)?;
    let mut response = resource(q.r#type.as_deref())?;
    let h = response.headers_mut();
    h.insert(header::SET_COOKIE, cookie::clear_ticket(&tr.cookie));
    h.insert(
        header::EXPIRES,
        HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, must-revalidate, max-age=0, s-maxage=86400"),
    );
    Ok(response)
}
