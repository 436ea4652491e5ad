//! Tickets over HTTP: checking one in a request (with the per-user
//! not-before time from the store), issuing one at login, and
//! plone.session's refresh and remove resources. (The admin revocation
//! endpoints are with the other admin handlers, in `admin.rs`.)

use super::error::ApiError;
use crate::app::App;
use crate::clock::now;
use crate::http::ClientAddr;
use crate::tickets::TicketRealm;
use axum::extract::{Extension, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sessiond_core::ticket::{Ticket, TicketError};
use sessiond_core::{Identity, Timestamp};
use sessiond_store::StoreError;
use std::net::IpAddr;
use std::sync::Arc;

/// Why a ticket was not accepted.
#[derive(Debug)]
pub enum Refused {
    /// No ticket cookie in the request.
    Missing,
    Invalid(TicketError),
    /// Issued before the user's tickets were revoked.
    Revoked,
    Store(StoreError),
}

impl Refused {
    pub fn reason(&self) -> String {
        match self {
            Refused::Missing => "no ticket".into(),
            Refused::Invalid(e) => e.to_string(),
            Refused::Revoked => "the user's tickets were revoked after this one was issued".into(),
            Refused::Store(_) => "the session store is unavailable".into(),
        }
    }
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
    /// Who the ticket speaks for, in the terms of a session's identity.
    pub fn identity(&self) -> Identity {
        Identity {
            user: self.ticket.user.clone(),
            source: "ticket".into(),
            uid: None,
            gid: None,
        }
    }
}

/// Checks a ticket cookie value in `tr`'s realm: signature, time, and the
/// user's not-before time in the store.
pub async fn check_value(
    app: &App,
    tr: &TicketRealm,
    value: &str,
    client: Option<IpAddr>,
    renew: bool,
) -> Result<Holder, Refused> {
    let t = now();
    let accepted = tr.check(value, client, t.0).map_err(|e| {
        metrics::counter!("sessiond_tickets_total", "result" => "refused").increment(1);
        Refused::Invalid(e)
    })?;
    // Store errors are counted by the caller's error response, as elsewhere.
    let not_before = app
        .store
        .ticket_not_before(&tr.realm, &accepted.ticket.user)
        .await
        .map_err(Refused::Store)?;
    if not_before.is_some_and(|nb| i64::from(accepted.ticket.issued) < nb.0) {
        metrics::counter!("sessiond_tickets_total", "result" => "revoked").increment(1);
        return Err(Refused::Revoked);
    }
    metrics::counter!("sessiond_tickets_total", "result" => "accepted").increment(1);
    let mut holder = Holder {
        ticket: accepted.ticket,
        renewed: None,
        not_before,
    };
    if renew && accepted.refresh {
        holder.renewed = reissue(tr, &holder, client).ok().map(|v| tr.set_cookie(&v));
    }
    Ok(holder)
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
) -> Result<Holder, Refused> {
    let Some(tr) = app.tickets.get(realm) else {
        return Err(Refused::Missing);
    };
    let Some(value) = tr.cookie_value(headers) else {
        return Err(Refused::Missing);
    };
    check_value(app, tr, value, client, true).await
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
) -> Result<String, IssueError> {
    let not_before = app
        .store
        .ticket_not_before(&tr.realm, user)
        .await
        .map_err(IssueError::Store)?;
    sign_now(tr, user, user_data, tokens, client, not_before).map_err(IssueError::Ticket)
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

#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error("{0}")]
    Ticket(TicketError),
    #[error("session store unavailable: {0}")]
    Store(StoreError),
}

impl From<IssueError> for ApiError {
    fn from(e: IssueError) -> ApiError {
        match e {
            IssueError::Store(e) => ApiError::store("ticket_not_before", e),
            IssueError::Ticket(e) => {
                ApiError::bad_request(format!("no ticket can be issued for this user: {e}"))
            }
        }
    }
}

/// `Set-Cookie` with a login ticket for `user` in `realm`, if it is a ticket realm.
pub async fn login_cookie(
    app: &App,
    realm: &str,
    user: &str,
    client: Option<IpAddr>,
) -> Result<Option<HeaderValue>, IssueError> {
    let Some(tr) = app.tickets.get(realm) else {
        return Ok(None);
    };
    let value = issue_value(app, tr, user, "", &tr.tokens, client).await?;
    tracing::info!(realm, user, "ticket issued");
    Ok(Some(tr.set_cookie(&value)))
}

#[derive(Deserialize)]
pub struct ResourceQuery {
    realm: Option<String>,
    /// What the page loads the resource as: `css` (default), `gif` or `js`.
    r#type: Option<String>,
}

/// A transparent 1×1 GIF, for pages that load the resource as an image.
const EMPTY_GIF: &[u8] = b"GIF89a\x01\x00\x01\x00\xf0\x01\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\n\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;";

fn resource(kind: Option<&str>) -> Result<Response, ApiError> {
    Ok(match kind.unwrap_or("css") {
        "css" => ([(header::CONTENT_TYPE, "text/css")], "").into_response(),
        "js" => ([(header::CONTENT_TYPE, "text/javascript")], "").into_response(),
        "gif" => ([(header::CONTENT_TYPE, "image/gif")], EMPTY_GIF).into_response(),
        other => {
            return Err(ApiError::bad_request(format!(
                "type: {other:?} is not css, gif or js"
            )))
        }
    })
}

pub(super) fn ticket_realm<'a>(
    app: &'a App,
    realm: Option<&str>,
) -> Result<&'a TicketRealm, ApiError> {
    let realm = realm.unwrap_or(&app.config.browser.realm);
    app.tickets.get(realm).map(|tr| &**tr).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_a_ticket_realm",
            format!("realm {realm:?} has no [realms.{realm}.ticket] configuration"),
        )
    })
}

/// `GET /ticket/refresh`: plone.session's refresh resource. A page loads it
/// (as CSS, an image or a script); for a holder of a valid ticket it
/// re-issues the cookie, and its `max-age` decides how often the browser
/// comes back.
pub async fn refresh(
    State(app): State<Arc<App>>,
    client: Option<Extension<ClientAddr>>,
    Query(q): Query<ResourceQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let tr = ticket_realm(&app, q.realm.as_deref())?;
    let mut response = resource(q.r#type.as_deref())?;
    let client = client.map(|c| c.client);
    let holder = match tr.cookie_value(&headers) {
        Some(value) => match check_value(&app, tr, value, client, false).await {
            Ok(h) => Some(h),
            Err(Refused::Store(e)) => return Err(ApiError::store("ticket_not_before", e)),
            Err(_) => None,
        },
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
            let value = reissue(tr, &holder, client).map_err(IssueError::Ticket)?;
            let h = response.headers_mut();
            h.insert(header::SET_COOKIE, tr.set_cookie(&value));
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
    Query(q): Query<ResourceQuery>,
) -> Result<Response, ApiError> {
    let tr = ticket_realm(&app, q.realm.as_deref())?;
    let mut response = resource(q.r#type.as_deref())?;
    let h = response.headers_mut();
    h.insert(header::SET_COOKIE, tr.clear_cookie());
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
