//! The one step every surface takes to check a presented credential: look
//! the session up (counting as activity, or passively), and where the realm
//! signs tickets, accept a ticket in the token's place. The text protocol's
//! `/valid`, `/v1/validate`, the browser routes, forward auth and the
//! credentials endpoint all go through here, so they cannot disagree on
//! what is current.

use super::error::Error;
use super::tickets::{self, Holder};
use crate::app::App;
use crate::clock::now;
use crate::tickets::TicketRealm;
use sessiond_core::session::{SessionRecord, Validity};
use sessiond_core::Token;
use sessiond_core::TokenHash;
pub use sessiond_store::Access;
use std::net::IpAddr;
use std::sync::Arc;

/// The session `token` names in `realm`, as the store classifies it.
pub async fn lookup(
    app: &App,
    token: &Token,
    realm: &str,
    access: Access,
) -> Result<Validity, Error> {
    let validity = app
        .store
        .check(token.hash(), realm, now(), access)
        .await
        .map_err(Error::store("validate"))?;
    Ok(match validity {
        // Answered as unknown; the expiry is an audit event, once (the
        // store deleted the record).
        Validity::Expired(record) => {
            crate::audit::expired(&app.audit, realm, &record, &token.hash());
            Validity::Unknown
        }
        other => other,
    })
}

/// The current session of `token` in `realm`, or [`Error::NotCurrent`].
pub async fn current(
    app: &App,
    token: &Token,
    realm: &str,
    access: Access,
) -> Result<SessionRecord, Error> {
    match lookup(app, token, realm, access).await? {
        Validity::Current(record) => Ok(record),
        Validity::Superseded(_) | Validity::Expired(_) | Validity::Unknown => {
            Err(Error::NotCurrent)
        }
    }
}

/// What a token (or, in a ticket realm, a ticket in its place) is.
pub enum Checked {
    Current(SessionRecord),
    Superseded(SessionRecord),
    /// A valid signed ticket of the realm (and the realm's ticket settings).
    Ticket(Arc<TicketRealm>, Box<Holder>),
    /// Neither: unknown, ended, or a refused ticket.
    Invalid,
}

/// `/valid` and `/v1/validate`: a session token, or in a ticket realm a
/// ticket (the cookie's value) passed as the token.
pub async fn token_or_ticket(
    app: &App,
    token: &Token,
    realm: &str,
    client: Option<IpAddr>,
) -> Result<Checked, Error> {
    match lookup(app, token, realm, Access::Touch).await? {
        Validity::Current(r) => return Ok(Checked::Current(r)),
        Validity::Superseded(r) => return Ok(Checked::Superseded(r)),
        Validity::Expired(_) | Validity::Unknown => {}
    }
    let Some(tr) = app.ticket_realm(realm) else {
        return Ok(Checked::Invalid);
    };
    Ok(
        match tickets::check_value(app, &tr, token.expose(), client, false).await? {
            Ok(holder) => Checked::Ticket(tr, Box::new(holder)),
            Err(_) => Checked::Invalid,
        },
    )
}

/// Ends the session `id` names, but only if it is `user`'s in `realm`:
/// session ids are listed and are not secrets, so an id taken from another
/// user's listing must not end that user's session. The look is a peek (it
/// is not the session's activity). [`Error::NoSuchSession`] otherwise.
pub async fn end_own_session(
    app: &App,
    id: TokenHash,
    realm: &str,
    user: &str,
) -> Result<(), Error> {
    let t = now();
    match app
        .store
        .peek(id, realm, t)
        .await
        .map_err(Error::store("revoke"))?
    {
        Validity::Current(r) | Validity::Superseded(r) if r.identity.user == user => {}
        _ => return Err(Error::NoSuchSession),
    }
    app.store
        .revoke(id, realm, t)
        .await
        .map_err(Error::store("revoke"))?
        .map(|_| ())
        .ok_or(Error::NoSuchSession)
}
