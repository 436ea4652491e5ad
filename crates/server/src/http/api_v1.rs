//! The JSON API: the same operations as the text protocol, plus session data,
//! with machine-readable errors `{"error": code, "message": text}`
//! (`http/error.rs`).

use crate::app::App;
use crate::clock::now;
use crate::http::error::ApiError;
use crate::http::{bearer, ClientAddr};
use crate::login::{self, PasswordLogin};
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sessiond_auth::Password;
use sessiond_core::session::{SessionData, SessionRecord, Validity};
use sessiond_core::{Timestamp, Token};
use sessiond_store::DataWrite;
use std::sync::Arc;

/// Parses a JSON body, reporting what was wrong with it.
fn parse_body<T: DeserializeOwned>(headers: &HeaderMap, body: &Bytes) -> Result<T, ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !is_json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send a JSON body with Content-Type: application/json",
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

#[derive(Serialize)]
struct SessionView<'a> {
    realm: &'a str,
    user: &'a str,
    source: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    uid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gid: Option<u32>,
    created: i64,
    last_access: i64,
    /// When the session ends if unused (Unix seconds), or null for never.
    expires_at: Option<i64>,
}

fn view(r: &SessionRecord) -> SessionView<'_> {
    SessionView {
        realm: &r.realm,
        user: &r.identity.user,
        source: &r.identity.source,
        uid: r.identity.uid,
        gid: r.identity.gid,
        created: r.created.0,
        last_access: r.last_access.0,
        expires_at: r.ends_at().map(|t: Timestamp| t.0),
    }
}

fn with_token(token: &Token, record: &SessionRecord) -> Value {
    let mut v = serde_json::to_value(view(record)).expect("views serialise");
    v["token"] = Value::String(token.expose().to_owned());
    v
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    realm: String,
    user: String,
    password: String,
    module: Option<String>,
}

/// Body of `/v1/login` with `Authorization: Negotiate`: no password.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NegotiateLoginBody {
    realm: String,
}

pub async fn login(
    State(app): State<Arc<App>>,
    client: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    if let Some(gss_token) = super::negotiate::token(&headers) {
        let b: NegotiateLoginBody = parse_body(&headers, &body)?;
        return negotiate_login(&app, &b.realm, gss_token, client.map(|c| c.0)).await;
    }
    let b: LoginBody =
        match parse_body(&headers, &body) {
            Ok(b) => b,
            // `{"realm": …}` alone, where Negotiate is on: ask for the ticket, so
            // `curl --negotiate` and GSSAPI HTTP clients send it on their retry.
            Err(e) => return Err(match parse_body::<NegotiateLoginBody>(&headers, &body) {
                Ok(b) if app.config.negotiate_in(&b.realm) => ApiError {
                    negotiate: true,
                    ..ApiError::new(
                        StatusCode::UNAUTHORIZED,
                        "negotiate",
                        "send user and password, or a Kerberos ticket (Authorization: Negotiate)",
                    )
                },
                _ => e,
            }),
        };
    let request = PasswordLogin {
        realm: &b.realm,
        user: &b.user,
        password: Password::new(b.password),
        module: b.module.as_deref(),
        source: None,
        client: client.map(|c| c.ip()),
        policy: None,
        device: None,
    };
    let client_ip = request.client;
    let (token, record) = login::password_login(&app, request).await?;
    let mut body = with_token(&token, &record);
    // In a ticket realm the answer carries a signed ticket too.
    if let Some(tr) = app.tickets.get(&b.realm) {
        let value =
            super::tickets::issue_value(&app, tr, &record.identity.user, "", &tr.tokens, client_ip)
                .await?;
        body["ticket"] = json!(value);
    }
    Ok(Json(body).into_response())
}

async fn negotiate_login(
    app: &App,
    realm: &str,
    gss_token: Result<Vec<u8>, ()>,
    client: Option<ClientAddr>,
) -> Result<Response, ApiError> {
    use super::negotiate::Failure;
    match super::negotiate::login(app, realm, gss_token, client, None, true).await {
        Ok(s) => {
            let token = s.token.as_ref().expect("a stored session");
            let mut r = Json(with_token(token, &s.record)).into_response();
            if let Some(reply) = s.reply {
                r.headers_mut().insert(header::WWW_AUTHENTICATE, reply);
            }
            Ok(r)
        }
        Err(Failure::NotEnabled) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "negotiate_not_enabled",
            "Negotiate logins are not enabled (kerberos.negotiate)",
        )),
        Err(Failure::Refused(reason)) => {
            tracing::info!(%reason, "Negotiate refused");
            Err(ApiError {
                negotiate: true,
                ..ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "negotiate_refused",
                    "the Kerberos token was not accepted",
                )
            })
        }
        Err(Failure::Unavailable(reason)) => {
            tracing::error!(%reason, "Negotiate unavailable");
            Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "auth_unavailable",
                "Kerberos is unavailable right now; try again",
            ))
        }
        Err(Failure::Continue(challenge)) => {
            let mut r = ApiError::new(
                StatusCode::UNAUTHORIZED,
                "negotiate_continue",
                "the Negotiate exchange continues: send the next token on this connection",
            )
            .into_response();
            r.headers_mut().insert(header::WWW_AUTHENTICATE, challenge);
            Ok(r)
        }
        Err(Failure::Login(e)) => Err(e.into()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    realm: String,
    token: String,
}

pub async fn validate(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let b: TokenBody = parse_body(&headers, &body)?;
    let token = Token::from_client(b.token);
    let answer = match app.store.validate(token.hash(), &b.realm, now()).await {
        Ok(Validity::Current(r)) => json!({"status": "valid", "session": view(&r)}),
        Ok(Validity::Superseded(r)) => json!({"status": "superseded", "session": view(&r)}),
        Ok(Validity::Unknown) => json!({"status": "invalid"}),
        Err(e) => return Err(ApiError::store("validate", e)),
    };
    Ok(Json(answer))
}

pub async fn revoke(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let b: TokenBody = parse_body(&headers, &body)?;
    let token = Token::from_client(b.token);
    match app.store.revoke(token.hash(), &b.realm, now()).await {
        Ok(Some(_)) => Ok(Json(json!({"revoked": true}))),
        Ok(None) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "invalid_token",
            "no such session in this realm (already revoked or expired?)",
        )),
        Err(e) => Err(ApiError::store("revoke", e)),
    }
}

pub async fn replace(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let b: TokenBody = parse_body(&headers, &body)?;
    let old = Token::from_client(b.token);
    let fresh = Token::generate();
    match app
        .store
        .replace(old.hash(), fresh.hash(), &b.realm, now())
        .await
    {
        Ok(Some(r)) => Ok(Json(with_token(&fresh, &r))),
        Ok(None) => Err(ApiError::not_current()),
        Err(e) => Err(ApiError::store("replace", e)),
    }
}

#[derive(Deserialize)]
pub struct RealmQuery {
    realm: Option<String>,
}

/// The caller's own session: `Authorization: Bearer <token>` and `?realm=`.
fn caller(headers: &HeaderMap, q: RealmQuery) -> Result<(Token, String), ApiError> {
    let token = bearer(headers).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing_token",
            "send the session token as Authorization: Bearer <token>",
        )
    })?;
    let realm = q
        .realm
        .ok_or_else(|| ApiError::bad_request("missing realm query parameter"))?;
    Ok((Token::from_client(token), realm))
}

pub async fn get_data(
    State(app): State<Arc<App>>,
    Query(q): Query<RealmQuery>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let (token, realm) = caller(&headers, q)?;
    match app.store.read_data(token.hash(), &realm, now()).await {
        Ok(Some((data, version))) => Ok(Json(json!({"data": data, "version": version}))),
        Ok(None) => Err(ApiError::not_current()),
        Err(e) => Err(ApiError::store("read_data", e)),
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
    Query(q): Query<RealmQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let (token, realm) = caller(&headers, q)?;
    let b: PutData = parse_body(&headers, &body)?;
    check_data_size(&b.data)?;
    match app
        .store
        .write_data(token.hash(), &realm, b.version, b.data, now())
        .await
    {
        Ok(DataWrite::Written { version }) => Ok(Json(json!({"version": version}))),
        Ok(DataWrite::Conflict { current_version }) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "version_conflict",
            format!(
                "the data changed since version {} (now {current_version}); read it again",
                b.version
            ),
        )),
        Ok(DataWrite::NotFound) => Err(ApiError::not_current()),
        Err(e) => Err(ApiError::store("write_data", e)),
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

fn check_data_size(data: &SessionData) -> Result<(), ApiError> {
    let size = serde_json::to_vec(data)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > MAX_DATA_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "data_too_large",
            format!("session data would be {size} bytes; the limit is {MAX_DATA_BYTES}"),
        ));
    }
    Ok(())
}

/// Merges keys into the session data, retrying the compare-and-set until it
/// wins, so concurrent patches of different keys never lose each other.
pub async fn patch_data(
    State(app): State<Arc<App>>,
    Query(q): Query<RealmQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let (token, realm) = caller(&headers, q)?;
    let patch: PatchData = parse_body(&headers, &body)?;
    for _ in 0..64 {
        let (mut data, version) = match app.store.read_data(token.hash(), &realm, now()).await {
            Ok(Some(v)) => v,
            Ok(None) => return Err(ApiError::not_current()),
            Err(e) => return Err(ApiError::store("read_data", e)),
        };
        for k in &patch.remove {
            data.remove(k);
        }
        data.extend(patch.set.clone());
        check_data_size(&data)?;
        match app
            .store
            .write_data(token.hash(), &realm, version, data.clone(), now())
            .await
        {
            Ok(DataWrite::Written { version }) => {
                return Ok(Json(json!({"data": data, "version": version})))
            }
            Ok(DataWrite::Conflict { .. }) => tokio::task::yield_now().await,
            Ok(DataWrite::NotFound) => return Err(ApiError::not_current()),
            Err(e) => return Err(ApiError::store("write_data", e)),
        }
    }
    Err(ApiError::new(
        StatusCode::CONFLICT,
        "version_conflict",
        "the session data is changing too fast; try again",
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

pub async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such API endpoint; see /v1/openapi.json",
    )
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not accept that method; see /v1/openapi.json",
    )
}
