//! The JSON API: the same operations as the text protocol, plus session data,
//! with machine-readable errors `{"error": code, "message": text}` (the one
//! error model, `http/error.rs`).

use super::check::{self, Checked};
use super::error::Error;
use super::extract::{BearerSession, Client, JsonBody, NegotiateHeader};
use super::{negotiate, tickets, view};
use crate::app::App;
use crate::audit;
use crate::clock::now;
use crate::login::{self, PasswordLogin};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use sessiond_auth::Password;
use sessiond_core::session::SessionData;
use sessiond_core::Token;
use sessiond_store::DataWrite;
use std::sync::Arc;

/// Body of `/v1/login`: a password login, or with `Authorization:
/// Negotiate` only the realm.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    realm: String,
    user: Option<String>,
    password: Option<String>,
    module: Option<String>,
}

pub async fn login(
    State(app): State<Arc<App>>,
    client: Client,
    NegotiateHeader(gss_token): NegotiateHeader,
    JsonBody(b): JsonBody<LoginBody>,
) -> Result<Response, Error> {
    if let Some(gss_token) = gss_token {
        if b.user.is_some() || b.password.is_some() {
            return Err(Error::BadRequest(
                "send a Kerberos ticket or a password, not both".into(),
            ));
        }
        let s = negotiate::login(&app, &b.realm, gss_token, client.0, None, true).await?;
        let token = s.token.as_ref().expect("a stored session");
        let mut r = Json(view::with_token(token, &s.record)).into_response();
        if let Some(reply) = s.reply {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, reply);
        }
        return Ok(r);
    }
    let (Some(user), Some(password)) = (b.user, b.password) else {
        // `{"realm": …}` alone, where Negotiate is on: ask for the ticket, so
        // `curl --negotiate` and GSSAPI HTTP clients send it on their retry.
        if app.config.negotiate_in(&b.realm) {
            return Err(Error::NegotiateNeeded);
        }
        return Err(Error::BadRequest(
            "invalid JSON body: user and password are required".into(),
        ));
    };
    let request = PasswordLogin {
        realm: &b.realm,
        user: &user,
        password: Password::new(password),
        module: b.module.as_deref(),
        source: None,
        client: client.ip(),
        policy: None,
        device: None,
    };
    let (token, record) = login::password_login(&app, request).await?;
    let mut body = view::with_token(&token, &record);
    // In a ticket realm the answer carries a signed ticket too.
    if let Some(tr) = app.ticket_realm(&b.realm) {
        let value = tickets::issue_value(
            &app,
            &tr,
            &record.identity.user,
            "",
            &tickets::login_tokens(&tr, &record.identity),
            client.ip(),
        )
        .await?;
        body["ticket"] = json!(value);
    }
    Ok(Json(body).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    realm: String,
    token: String,
}

/// `POST /v1/validate`: a session token, or in a ticket realm a ticket in
/// its place (as `/valid` accepts).
pub async fn validate(
    State(app): State<Arc<App>>,
    client: Client,
    JsonBody(b): JsonBody<TokenBody>,
) -> Result<Json<Value>, Error> {
    let token = Token::from_client(b.token);
    Ok(Json(
        match check::token_or_ticket(&app, &token, &b.realm, client.ip()).await? {
            Checked::Current(r) => json!({"status": "valid", "session": view::session(&r)}),
            Checked::Superseded(r) => {
                json!({"status": "superseded", "session": view::session(&r)})
            }
            Checked::Ticket(tr, holder) => {
                json!({"status": "valid", "session": view::ticket(&tr, &holder)})
            }
            Checked::Invalid => json!({"status": "invalid"}),
        },
    ))
}

pub async fn revoke(
    State(app): State<Arc<App>>,
    JsonBody(b): JsonBody<TokenBody>,
) -> Result<Json<Value>, Error> {
    let token = Token::from_client(b.token);
    match app
        .store
        .revoke(token.hash(), &b.realm, now())
        .await
        .map_err(Error::store("revoke"))?
    {
        Some(r) => {
            audit::revoked(&app.audit, &b.realm, &r, &token.hash());
            Ok(Json(json!({"revoked": true})))
        }
        None => Err(Error::UnknownToken),
    }
}

pub async fn replace(
    State(app): State<Arc<App>>,
    JsonBody(b): JsonBody<TokenBody>,
) -> Result<Json<Value>, Error> {
    let old = Token::from_client(b.token);
    let fresh = Token::generate();
    match app
        .store
        .replace(old.hash(), fresh.hash(), &b.realm, now())
        .await
        .map_err(Error::store("replace"))?
    {
        Some(r) => {
            audit::replaced(&app.audit, &b.realm, &r, &old.hash(), &fresh.hash());
            Ok(Json(view::with_token(&fresh, &r)))
        }
        None => Err(Error::NotCurrent),
    }
}

pub async fn get_data(
    State(app): State<Arc<App>>,
    BearerSession { token, realm }: BearerSession,
) -> Result<Json<Value>, Error> {
    match app
        .store
        .read_data(token.hash(), &realm, now())
        .await
        .map_err(Error::store("read_data"))?
    {
        Some((data, version)) => Ok(Json(json!({"data": data, "version": version}))),
        None => Err(Error::NotCurrent),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutData {
    data: SessionData,
    /// The version read before; the write fails with 409 if it changed since.
    version: u64,
}

pub async fn put_data(
    State(app): State<Arc<App>>,
    BearerSession { token, realm }: BearerSession,
    JsonBody(b): JsonBody<PutData>,
) -> Result<Json<Value>, Error> {
    check_data_size(&b.data)?;
    match app
        .store
        .write_data(token.hash(), &realm, b.version, b.data, now())
        .await
        .map_err(Error::store("write_data"))?
    {
        DataWrite::Written { version } => Ok(Json(json!({"version": version}))),
        DataWrite::Conflict { current_version } => Err(Error::VersionConflict(format!(
            "the data changed since version {} (now {current_version}); read it again",
            b.version
        ))),
        DataWrite::NotFound => Err(Error::NotCurrent),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchData {
    #[serde(default)]
    set: SessionData,
    #[serde(default)]
    remove: Vec<String>,
}

/// Largest session data, serialised: sessions are checked on every request
/// and must stay cheap to load.
const MAX_DATA_BYTES: usize = 32 * 1024;

fn check_data_size(data: &SessionData) -> Result<(), Error> {
    let size = serde_json::to_vec(data)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > MAX_DATA_BYTES {
        return Err(Error::DataTooLarge {
            size,
            limit: MAX_DATA_BYTES,
        });
    }
    Ok(())
}

/// Merges keys into the session data, retrying the compare-and-set until it
/// wins, so concurrent patches of different keys never lose each other.
pub async fn patch_data(
    State(app): State<Arc<App>>,
    BearerSession { token, realm }: BearerSession,
    JsonBody(patch): JsonBody<PatchData>,
) -> Result<Json<Value>, Error> {
    for _ in 0..64 {
        let (mut data, version) = app
            .store
            .read_data(token.hash(), &realm, now())
            .await
            .map_err(Error::store("read_data"))?
            .ok_or(Error::NotCurrent)?;
        for k in &patch.remove {
            data.remove(k);
        }
        data.extend(patch.set.clone());
        check_data_size(&data)?;
        match app
            .store
            .write_data(token.hash(), &realm, version, data.clone(), now())
            .await
            .map_err(Error::store("write_data"))?
        {
            DataWrite::Written { version } => {
                return Ok(Json(json!({"data": data, "version": version})))
            }
            DataWrite::Conflict { .. } => tokio::task::yield_now().await,
            DataWrite::NotFound => return Err(Error::NotCurrent),
        }
    }
    Err(Error::VersionConflict(
        "the session data is changing too fast; try again".into(),
    ))
}

/// The OpenAPI description of this API (docs/openapi.json, compiled in).
pub async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("../../../../docs/openapi.json"),
    )
        .into_response()
}

pub async fn method_not_allowed() -> Error {
    Error::MethodNotAllowed
}
