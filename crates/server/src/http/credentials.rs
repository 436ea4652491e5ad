//! `GET /v1/sessions/credentials`: an authorised back end fetches the
//! Kerberos credentials a session keeps (a delegated ticket, or the TGT of a
//! `krb5` password login) as an MIT ccache, to act as the user.
//!
//! Two credentials are needed: the back end's own (`Authorization: Bearer`,
//! one of `kerberos.credential_readers_file`) and the user's session token
//! (`X-Sessiond-Token`) — a back end can only use the credentials of users
//! who are, at that moment, using it.

use super::check::{self, Access};
use super::error::Error;
use super::extract::{CredentialReader, HeaderToken, Realm};
use crate::app::App;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

pub async fn fetch(
    State(app): State<Arc<App>>,
    _: CredentialReader,
    HeaderToken(token): HeaderToken,
    Realm(realm): Realm,
) -> Result<Response, Error> {
    let record = check::current(&app, &token, &realm, Access::Touch).await?;
    let sealed = record.credentials.as_deref().ok_or(Error::NoCredentials)?;
    let ccache = app
        .open_credentials(&realm, &record.identity.user, sealed)
        .map_err(|e| {
            tracing::error!(error = %e, session = %token.hash().short(), "cannot open stored credentials");
            Error::CredentialsUnreadable
        })?;
    tracing::info!(realm, user = %record.identity.user, session = %token.hash().short(), "credentials fetched");
    app.audit.emit(
        crate::audit::Event::new(
            crate::audit::Action::CredentialFetch,
            crate::audit::Outcome::Success,
        )
        .realm(&realm)
        .user(&record.identity.user)
        .source(&record.identity.source)
        .session(&token.hash()),
    );
    let mut r = (StatusCode::OK, ccache).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}
