//! `GET /v1/sessions/credentials`: an authorised back end fetches Kerberos
//! credentials for a session's user as an MIT ccache, to act as the user:
//!
//! * without `?target=`, the credentials the session keeps (a delegated
//!   TGT, or the TGT of a `krb5` password login);
//! * with `?target=service/host@REALM`, a ticket for the user to that one
//!   service, obtained by sessiond through constrained delegation
//!   (`[realms.X.delegation]`, `sessiond_auth::s4u`): the cache holds that
//!   ticket alone, never sessiond's own TGT (decision 0023).
//!
//! Two credentials are needed: the back end's own (`Authorization: Bearer`,
//! one of `kerberos.credential_readers_file`) and the user's session token
//! (`X-Sessiond-Token`) — a back end can only use the credentials of users
//! who are, at that moment, using it.

use super::check::{self, Access};
use super::error::Error;
use super::extract::{CredentialReader, HeaderToken, Realm, Target};
use crate::app::App;
use crate::config::DelegationConfig;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sessiond_core::ccache::{Ccache, Principal};
use sessiond_core::SessionRecord;
use std::sync::Arc;

pub async fn fetch(
    State(app): State<Arc<App>>,
    _: CredentialReader,
    HeaderToken(token): HeaderToken,
    Realm(realm): Realm,
    Target(target): Target,
) -> Result<Response, Error> {
    // A target the realm does not list is refused before anything is asked
    // of the store or the KDC.
    let allowed = target
        .map(|t| allowed_target(&app, &realm, &t))
        .transpose()?;
    let target = allowed.as_ref().map(|(t, _)| t.as_str());
    let record = check::current(&app, &token, &realm, Access::Touch).await?;
    let kept = record
        .credentials
        .as_deref()
        .map(|sealed| {
            app.open_credentials(&realm, &record.identity.user, sealed)
                .map_err(|e| {
                    tracing::error!(error = %e, session = %token.hash().short(), "cannot open stored credentials");
                    Error::CredentialsUnreadable
                })
        })
        .transpose()?;
    let ccache = match &allowed {
        // What the session keeps, whole, only if it is a TGT the user
        // delegated (or a krb5 login's): the back ends' tickets a Negotiate
        // login obtained are handed out one at a time.
        None => match kept {
            Some(cache) if users_own_tgt(&cache)? => cache,
            _ => return Err(Error::NoCredentials),
        },
        Some((target, delegation)) => match kept
            .as_deref()
            .and_then(|c| one_ticket(c, target, crate::clock::now()))
        {
            Some(ticket) => ticket,
            None => delegated(&app, delegation, &record, &token.hash(), target).await?,
        },
    };
    tracing::info!(
        realm,
        user = %record.identity.user,
        session = %token.hash().short(),
        target = target.unwrap_or("-"),
        "credentials fetched"
    );
    let hash = token.hash();
    let mut event = crate::audit::Event::new(
        crate::audit::Action::CredentialFetch,
        crate::audit::Outcome::Success,
    )
    .realm(&realm)
    .user(&record.identity.user)
    .source(&record.identity.source)
    .session(&hash);
    if let Some(t) = target {
        event = event.reason(t);
    }
    app.audit.emit(event);
    let mut r = (StatusCode::OK, ccache).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

/// Whether a kept cache is the user's own TGT (a forwarded one, or a
/// password login's), the only kind handed out whole. One sessiond cannot
/// read is not passed on unread (decision 0023).
fn users_own_tgt(cache: &[u8]) -> Result<bool, Error> {
    match Ccache::parse(cache) {
        Ok(c) => Ok(c.is_users_own_tgt()),
        Err(e) => {
            tracing::error!(error = %e, "a kept credential cache cannot be read");
            Err(Error::CredentialsUnreadable)
        }
    }
}

/// The kept cache's ticket for its user to `target`, alone in a cache, if
/// it is still [`crate::delegation::usable`] at `now`.
fn one_ticket(cache: &[u8], target: &str, now: sessiond_core::Timestamp) -> Option<Vec<u8>> {
    let cache = Ccache::parse(cache).ok()?;
    let user = cache.default.clone();
    let one = cache.only_ticket(&user, &Principal::parse(target))?;
    let ends = i64::from(one.credentials.first()?.end_time()?);
    crate::delegation::usable(ends, now).then(|| one.to_bytes())
}

/// The configured principal `asked` names in `realm`'s delegation targets,
/// with the realm's delegation settings.
fn allowed_target<'a>(
    app: &'a App,
    realm: &str,
    asked: &str,
) -> Result<(String, &'a DelegationConfig), Error> {
    let delegation = app.config.delegation_in(realm).ok_or_else(|| {
        Error::TargetNotAllowed(format!(
            "realm {realm:?} delegates to no service ([realms.{realm}.delegation])"
        ))
    })?;
    let target = delegation.target(asked).ok_or_else(|| {
        Error::TargetNotAllowed(format!(
            "{asked:?} is not one of realm {realm:?}'s delegation targets"
        ))
    })?;
    Ok((target.to_owned(), delegation))
}

/// A ticket for the session's user to `target` the session does not keep
/// (its login brought no Kerberos evidence, or was before the target was
/// configured): by protocol transition, where the realm allows it.
#[cfg(feature = "kerberos")]
async fn delegated(
    app: &App,
    delegation: &DelegationConfig,
    record: &SessionRecord,
    session: &sessiond_core::TokenHash,
    target: &str,
) -> Result<Vec<u8>, Error> {
    use sessiond_auth::s4u::{self, DelegationError};
    if !delegation.protocol_transition {
        // nothing to obtain the ticket from
        return Err(Error::NoCredentials);
    }
    if let Some(kept) = app
        .delegated_tickets
        .get(session, target, crate::clock::now())
    {
        return Ok(kept);
    }
    let from_kerberos = matches!(record.identity.source.as_str(), "negotiate" | "auth/krb5");
    let principal = delegation
        .principal_of(&record.identity.user, from_kerberos)
        .map_err(Error::DelegationRefused)?;
    let (service, owned_target) = (app.config.kerberos.service.clone(), target.to_owned());
    let got = tokio::task::spawn_blocking(move || {
        s4u::ticket_by_protocol_transition(&service, &principal, &owned_target)
    })
    .await
    .map_err(|e| Error::KerberosUnavailable(format!("Kerberos task failed: {e}")))?;
    match got {
        Ok(ccache) => {
            app.delegated_tickets.put(session, target, ccache.expose());
            Ok(ccache.expose().to_vec())
        }
        Err(e @ DelegationError::Refused { .. }) => Err(Error::DelegationRefused(e.to_string())),
        Err(e @ DelegationError::Unavailable(_)) => Err(Error::KerberosUnavailable(e.to_string())),
    }
}

/// Without Kerberos support no realm can configure delegation (the
/// configuration is refused at start-up), so no target is ever allowed.
#[cfg(not(feature = "kerberos"))]
async fn delegated(
    _: &App,
    _: &DelegationConfig,
    _: &SessionRecord,
    _: &sessiond_core::TokenHash,
    _: &str,
) -> Result<Vec<u8>, Error> {
    Err(Error::NotConfigured(
        "a sessiond built with `--features kerberos`",
    ))
}
