//! `GET /v1/sessions/credentials`: an authorised back end fetches the
//! Kerberos credentials a session keeps (a delegated ticket, or the TGT of a
//! `krb5` password login) as an MIT ccache, to act as the user.
//!
//! Two credentials are needed: the back end's own (`Authorization: Bearer`,
//! one of `kerberos.credential_readers_file`) and the user's session token
//! (`X-Sessiond-Token`) — a back end can only use the credentials of users
//! who are, at that moment, using it.

use super::bearer;
use super::error::ApiError;
use crate::app::App;
use crate::clock::now;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sessiond_core::session::Validity;
use sessiond_core::Token;
use std::sync::Arc;

#[derive(Deserialize)]
pub struct CredentialsQuery {
    realm: Option<String>,
}

pub async fn fetch(
    State(app): State<Arc<App>>,
    Query(q): Query<CredentialsQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if !app.has_credential_readers() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such resource (fetching credentials needs kerberos.credential_readers_file)",
        ));
    }
    match bearer(&headers) {
        Some(c) if app.is_credential_reader(c) => {}
        Some(_) => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this back end's credential is not allowed to fetch credentials",
            ))
        }
        None => {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "missing_credential",
                "send the back end's credential as Authorization: Bearer <credential>",
            ))
        }
    }
    let Some(token) = headers
        .get("x-sessiond-token")
        .and_then(|v| v.to_str().ok())
        .filter(|t| !t.is_empty())
    else {
        return Err(ApiError::bad_request(
            "send the user's session token as X-Sessiond-Token",
        ));
    };
    let realm = app.config.browser.realm_or_default(q.realm);
    let token = Token::from_client(token);
    let record = match app.store.validate(token.hash(), &realm, now()).await {
        Ok(Validity::Current(r)) => r,
        Ok(_) => {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "the token is unknown, expired, revoked or superseded",
            ))
        }
        Err(e) => return Err(ApiError::store("credentials", e)),
    };
    let Some(sealed) = record.credentials.as_deref() else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no_credentials",
            "this session holds no credentials (the client did not delegate)",
        ));
    };
    let ccache = app
        .open_credentials(&realm, &record.identity.user, sealed)
        .map_err(|e| {
            tracing::error!(error = %e, session = %token.hash().short(), "cannot open stored credentials");
            ApiError::new(
                StatusCode::GONE,
                "credentials_unreadable",
                "the session's credentials cannot be opened (sealed under a key no longer configured)",
            )
        })?;
    tracing::info!(realm, user = %record.identity.user, session = %token.hash().short(), "credentials fetched");
    let mut r = (StatusCode::OK, ccache).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}
