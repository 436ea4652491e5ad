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
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
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
    let target = target
        .map(|t| allowed_target(&app, &realm, &t))
        .transpose()?;
    let record = check::current(&app, &token, &realm, Access::Touch).await?;
    let ccache = match &target {
        None => {
            let sealed = record.credentials.as_deref().ok_or(Error::NoCredentials)?;
            app.open_credentials(&realm, &record.identity.user, sealed)
                .map_err(|e| {
                    tracing::error!(error = %e, session = %token.hash().short(), "cannot open stored credentials");
                    Error::CredentialsUnreadable
                })?
        }
        Some(target) => delegated(&app, &realm, &record, target).await?,
    };
    tracing::info!(
        realm,
        user = %record.identity.user,
        session = %token.hash().short(),
        target = target.as_deref().unwrap_or("-"),
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
    if let Some(t) = &target {
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

/// The configured principal `asked` names in `realm`'s delegation targets.
fn allowed_target(app: &App, realm: &str, asked: &str) -> Result<String, Error> {
    let delegation = app.config.delegation_in(realm).ok_or_else(|| {
        Error::TargetNotAllowed(format!(
            "realm {realm:?} delegates to no service ([realms.{realm}.delegation])"
        ))
    })?;
    delegation.target(asked).map(str::to_owned).ok_or_else(|| {
        Error::TargetNotAllowed(format!(
            "{asked:?} is not one of realm {realm:?}'s delegation targets"
        ))
    })
}

/// A ticket for the session's user to `target`, by protocol transition.
#[cfg(feature = "kerberos")]
async fn delegated(
    app: &App,
    realm: &str,
    record: &SessionRecord,
    target: &str,
) -> Result<Vec<u8>, Error> {
    use sessiond_auth::s4u::{self, DelegationError};
    let delegation = app
        .config
        .delegation_in(realm)
        .expect("the target was found in this realm's delegation");
    if !delegation.protocol_transition {
        // Kerberos evidence kept from a Negotiate login is not used yet
        // (issue 16): without protocol transition there is nothing to
        // obtain the ticket from.
        return Err(Error::NoCredentials);
    }
    let (service, principal, target) = (
        app.config.kerberos.service.clone(),
        delegation.principal_of(&record.identity.user),
        target.to_owned(),
    );
    let got = tokio::task::spawn_blocking(move || {
        s4u::ticket_by_protocol_transition(&service, &principal, &target)
    })
    .await
    .map_err(|e| Error::KerberosUnavailable(format!("Kerberos task failed: {e}")))?;
    match got {
        Ok(ccache) => Ok(ccache.expose().to_vec()),
        Err(e @ DelegationError::Refused { .. }) => Err(Error::DelegationRefused(e.to_string())),
        Err(e @ DelegationError::Unavailable(_)) => Err(Error::KerberosUnavailable(e.to_string())),
    }
}

/// Without Kerberos support no realm can configure delegation (the
/// configuration is refused at start-up), so no target is ever allowed.
#[cfg(not(feature = "kerberos"))]
async fn delegated(_: &App, _: &str, _: &SessionRecord, _: &str) -> Result<Vec<u8>, Error> {
    Err(Error::NotConfigured(
        "a sessiond built with `--features kerberos`",
    ))
}
