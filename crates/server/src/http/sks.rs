//! SessionKeyServer 1.5's text protocol, byte for byte where the original
//! answered, and a one-line `ERR: …` with 400/403 where it hung, dropped the
//! connection or crashed. See docs/protocol.md for every case.

// Helpers return the early response as their `Err`, the axum idiom; its size
// is irrelevant next to a network round trip.
#![allow(clippy::result_large_err)]

use crate::app::App;
use crate::clock::now;
use crate::http::params::Params;
use crate::http::{bearer, tickets, ClientAddr};
use crate::login::{self, LoginError, PasswordLogin};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use sessiond_auth::Password;
use sessiond_core::names::check_name;
use sessiond_core::session::{SessionRecord, Validity};
use sessiond_core::token::random_hex;
use sessiond_core::{Identity, Token};
use sessiond_store::{GroupChange, GroupRole, StoreError};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// The version the original reports; clients compare it.
const PROTOCOL_VERSION: &str = "1.5\n";

/// Explains a bodiless status to operators without changing the body clients read.
const REASON_HEADER: &str = "x-sessiond-reason";

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    let mut r = (status, body.into()).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    r
}

fn ok(body: impl Into<String>) -> Response {
    text(StatusCode::OK, body)
}

/// `200`, `text/plain` and an empty body of unannounced length, which hyper
/// sends chunked (`Transfer-Encoding: chunked`, then the last chunk): what the
/// original answered to `/get_key` when no key exists (reference §2.2).
fn ok_empty_chunked() -> Response {
    let mut r = Response::new(axum::body::Body::new(UnannouncedEmpty));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    r
}

/// An empty body that does not say it is empty: its size hint is unknown,
/// so HTTP/1.1 frames it with chunked encoding instead of `Content-Length: 0`.
/// (http-body-util's `Empty` announces its length; no stock body does this.)
struct UnannouncedEmpty;

impl http_body::Body for UnannouncedEmpty {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::task::Poll::Ready(None)
    }
}

/// A status with an empty body and no content type, as the original sent.
fn bare(status: StatusCode, reason: &'static str) -> Response {
    let mut r = status.into_response();
    r.headers_mut()
        .insert(REASON_HEADER, HeaderValue::from_static(reason));
    r
}

/// Where the original failed without an answer: a clear one-line error.
fn err(status: StatusCode, message: &str) -> Response {
    text(status, format!("ERR: {message}\n"))
}

fn store_unavailable(op: &'static str, e: StoreError) -> Response {
    metrics::counter!("sessiond_store_errors_total", "op" => op).increment(1);
    tracing::error!(op, error = %e, "session store error");
    err(
        StatusCode::SERVICE_UNAVAILABLE,
        "session store unavailable; try again",
    )
}

fn login_error(e: LoginError) -> Response {
    match e {
        LoginError::BadRequest(m) => err(StatusCode::BAD_REQUEST, &m),
        LoginError::UnknownModule(_) => {
            bare(StatusCode::FORBIDDEN, "unknown authentication module")
        }
        // The text protocol has one answer for every refusal, as the original.
        LoginError::Rejected | LoginError::Refused(_) => {
            bare(StatusCode::FORBIDDEN, "authentication failed")
        }
        e @ LoginError::RateLimited { retry_after, .. } => {
            let mut r = err(StatusCode::TOO_MANY_REQUESTS, &e.to_string());
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            r
        }
        LoginError::AuthUnavailable => err(
            StatusCode::SERVICE_UNAVAILABLE,
            "authentication back end unavailable; try again",
        ),
        LoginError::Store(e) => store_unavailable("create", e),
    }
}

/// Reads query and, for POST, an url-encoded form body into one parameter set.
/// What the handler needs from a request once its parameters are decoded.
struct Incoming {
    method: Method,
    path: String,
    params: Params,
    client: Option<ClientAddr>,
    admin_credential: Option<String>,
    negotiate: Option<Result<Vec<u8>, ()>>,
}

async fn read_params(req: Request) -> Result<Incoming, Response> {
    let (parts, body) = req.into_parts();
    let mut params = Params::default();
    params
        .add(parts.uri.query().unwrap_or(""), true)
        .map_err(|e| err(StatusCode::BAD_REQUEST, &format!("{e} in the query string")))?;
    if parts.method == Method::POST {
        let bytes = axum::body::to_bytes(body, usize::MAX).await.map_err(|_| {
            err(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body too large or incomplete",
            )
        })?;
        if !bytes.is_empty() {
            let form = parts
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
            if !form {
                return Err(err(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "POST bodies must be application/x-www-form-urlencoded",
                ));
            }
            let text = std::str::from_utf8(&bytes)
                .map_err(|_| err(StatusCode::BAD_REQUEST, "the form body is not UTF-8"))?;
            params
                .add(text, false)
                .map_err(|e| err(StatusCode::BAD_REQUEST, &format!("{e} in the form body")))?;
        }
    }
    Ok(Incoming {
        client: parts.extensions.get::<ClientAddr>().copied(),
        admin_credential: bearer(&parts.headers).map(str::to_owned),
        negotiate: super::negotiate::token(&parts.headers),
        path: parts.uri.path().to_owned(),
        method: parts.method,
        params,
    })
}

/// The text protocol's paths, for metrics labels: the same list as the
/// dispatch in [`handle`] below (`protocol.rs` calls each of them).
pub const PATHS: &[&str] = &[
    "/version",
    "/valid",
    "/revoke",
    "/replace",
    "/auth_token",
    "/pam_token",
    "/stored_token",
    "/get_key",
    "/gen_key",
    "/create_group",
    "/mod_group",
    "/group_hash",
];

/// Every request not routed elsewhere: SessionKeyServer's single handler.
pub async fn handle(State(app): State<Arc<App>>, req: Request) -> Response {
    // The JSON API's namespace: never the text protocol's "missing realm".
    if req.uri().path().starts_with("/v1/") {
        return crate::http::api_v1::not_found().await.into_response();
    }
    let Incoming {
        method,
        path,
        params,
        client,
        admin_credential,
        negotiate,
    } = match read_params(req).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    if method == Method::GET && path == "/version" {
        return ok(PROTOCOL_VERSION);
    }
    let Some(realm) = params.get("realm") else {
        return text(StatusCode::BAD_REQUEST, "ERR: missing realm\n");
    };
    if let Err(e) = login::check_realm(realm) {
        return login_error(e);
    }
    if method != Method::GET && method != Method::POST {
        return text(StatusCode::NOT_FOUND, "Unknown path");
    }
    let req = SksRequest {
        app: &app,
        realm,
        params: &params,
        client,
        admin: admin_credential.is_some_and(|c| app.is_admin(&c)),
        negotiate,
    };
    match path.as_str() {
        "/valid" => req.valid().await,
        "/revoke" => req.revoke().await,
        "/replace" => req.replace().await,
        "/auth_token" => req.auth_token().await,
        "/pam_token" => req.pam_token().await,
        "/stored_token" if app.has_admin() => req.stored_token().await,
        "/get_key" => req.get_key().await,
        "/gen_key" => req.gen_key().await,
        "/create_group" => req.create_group().await,
        "/mod_group" => req.mod_group().await,
        "/group_hash" => req.group_hash().await,
        _ if method == Method::POST => text(StatusCode::NOT_FOUND, "Unknown path"),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

struct SksRequest<'a> {
    app: &'a App,
    realm: &'a str,
    params: &'a Params,
    client: Option<ClientAddr>,
    /// Whether the caller presented the admin credential.
    admin: bool,
    /// `Authorization: Negotiate` instead of a password (`curl --negotiate`).
    negotiate: Option<Result<Vec<u8>, ()>>,
}

impl SksRequest<'_> {
    fn token(&self) -> Option<Token> {
        self.params.get("token").map(Token::from_client)
    }

    /// The current session of `token=`, or the response to send instead.
    async fn current(&self) -> Result<SessionRecord, Response> {
        let Some(token) = self.token() else {
            return Err(bare(StatusCode::FORBIDDEN, "missing token"));
        };
        match self
            .app
            .store
            .validate(token.hash(), self.realm, now())
            .await
        {
            Ok(Validity::Current(record)) => Ok(record),
            Ok(_) => Err(bare(StatusCode::FORBIDDEN, "token is not current")),
            Err(e) => Err(store_unavailable("validate", e)),
        }
    }

    async fn valid(&self) -> Response {
        let Some(token) = self.token() else {
            return ok("NO\n");
        };
        match self
            .app
            .store
            .validate(token.hash(), self.realm, now())
            .await
        {
            Ok(Validity::Current(r)) => ok(format!("YES\n{}\n", r.identity.sks_record_text())),
            Ok(Validity::Superseded(r)) => {
                ok(format!("SUPERCEDED\n{}\n", r.identity.sks_record_text()))
            }
            Ok(Validity::Unknown) => self.valid_ticket(&token).await,
            Err(e) => store_unavailable("validate", e),
        }
    }

    /// `/valid` in a ticket realm also accepts a ticket (the cookie value)
    /// as the token: YES with the ticket's user and source `ticket`.
    async fn valid_ticket(&self, token: &Token) -> Response {
        let Some(tr) = self.app.tickets.get(self.realm) else {
            return ok("NO\n");
        };
        let client = self.client.map(|c| c.client);
        match tickets::check_value(self.app, tr, token.expose(), client, false).await {
            Ok(holder) => ok(format!("YES\n{}\n", holder.identity().sks_record_text())),
            Err(tickets::Refused::Store(e)) => store_unavailable("ticket_not_before", e),
            Err(_) => ok("NO\n"),
        }
    }

    async fn revoke(&self) -> Response {
        let Some(token) = self.token() else {
            return ok("INVALID\n");
        };
        match self.app.store.revoke(token.hash(), self.realm, now()).await {
            Ok(Some(r)) => {
                tracing::info!(realm = self.realm, user = %r.identity.user, session = %token.hash().short(), "session revoked");
                ok("OK\n")
            }
            Ok(None) => ok("INVALID\n"),
            Err(e) => store_unavailable("revoke", e),
        }
    }

    async fn replace(&self) -> Response {
        let Some(token) = self.token() else {
            return bare(StatusCode::FORBIDDEN, "missing token");
        };
        let fresh = Token::generate();
        match self
            .app
            .store
            .replace(token.hash(), fresh.hash(), self.realm, now())
            .await
        {
            Ok(Some(r)) => {
                tracing::info!(realm = self.realm, user = %r.identity.user, old = %token.hash().short(), new = %fresh.hash().short(), "session replaced");
                ok(format!(
                    "{}\n{}\n",
                    fresh.expose(),
                    r.identity.sks_record_text()
                ))
            }
            Ok(None) => bare(StatusCode::FORBIDDEN, "token is not current"),
            Err(e) => store_unavailable("replace", e),
        }
    }

    /// The password, refusing it in the URL when so configured.
    fn password(&self) -> Result<Password, Response> {
        let Some(pwd) = self.params.get("pwd") else {
            return Err(err(StatusCode::BAD_REQUEST, "missing pwd"));
        };
        if self.app.config.server.refuse_query_credentials && self.params.in_query("pwd") {
            return Err(err(
                StatusCode::BAD_REQUEST,
                "passwords are not accepted in the URL here; send pwd in a POST form body",
            ));
        }
        Ok(Password::new(pwd))
    }

    fn user(&self) -> Result<&str, Response> {
        self.params
            .get("user")
            .ok_or_else(|| err(StatusCode::BAD_REQUEST, "missing user"))
    }

    async fn password_login(&self, module: Option<&str>, source: Option<&str>) -> Response {
        let user = match self.user() {
            Ok(u) => u,
            Err(r) => return r,
        };
        let password = match self.password() {
            Ok(p) => p,
            Err(r) => return r,
        };
        let request = PasswordLogin {
            realm: self.realm,
            user,
            password,
            module,
            source,
            client: self.client.map(|c| c.ip()),
            policy: None,
            device: None,
        };
        match login::password_login(self.app, request).await {
            Ok((token, record)) => ok(format!(
                "{}\n{}",
                token.expose(),
                record.identity.sks_record_text()
            )),
            Err(e) => login_error(e),
        }
    }

    async fn auth_token(&self) -> Response {
        if self.params.get("pwd").is_none() && self.app.config.negotiate_in(self.realm) {
            return self.negotiate_token().await;
        }
        self.password_login(self.params.get("module"), None).await
    }

    /// `/auth_token` with Kerberos: the first request (no header) gets 401
    /// `WWW-Authenticate: Negotiate`, the retry with a ticket gets a token.
    async fn negotiate_token(&self) -> Response {
        use super::negotiate::Failure;
        let Some(gss_token) = self.negotiate.clone() else {
            let mut r = err(
                StatusCode::UNAUTHORIZED,
                "send pwd, or a Kerberos ticket (Negotiate)",
            );
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, super::negotiate::CHALLENGE);
            return r;
        };
        match super::negotiate::login(self.app, self.realm, gss_token, self.client, None, true)
            .await
        {
            Ok(s) => {
                let token = s.token.as_ref().expect("a stored session");
                let mut r = ok(format!(
                    "{}\n{}",
                    token.expose(),
                    s.record.identity.sks_record_text()
                ));
                if let Some(reply) = s.reply {
                    r.headers_mut().insert(header::WWW_AUTHENTICATE, reply);
                }
                r
            }
            Err(Failure::Refused(reason)) => {
                tracing::info!(%reason, "Negotiate refused");
                let mut r = bare(StatusCode::FORBIDDEN, "authentication failed");
                r.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, super::negotiate::CHALLENGE);
                r
            }
            Err(Failure::NotEnabled) => err(StatusCode::BAD_REQUEST, "missing pwd"),
            Err(Failure::Continue(challenge)) => {
                let mut r = err(StatusCode::UNAUTHORIZED, "Negotiate continues");
                r.headers_mut().insert(header::WWW_AUTHENTICATE, challenge);
                r
            }
            Err(Failure::Unavailable(reason)) => {
                tracing::error!(%reason, "Negotiate unavailable");
                err(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "authentication back end unavailable; try again",
                )
            }
            Err(Failure::Login(e)) => login_error(e),
        }
    }

    /// Legacy PAM-only login, recorded with source `pam`.
    async fn pam_token(&self) -> Response {
        if !self.app.modules.contains_key("pam") {
            return bare(StatusCode::FORBIDDEN, "PAM is not enabled");
        }
        self.password_login(Some("pam"), Some("pam")).await
    }

    /// Stores a caller-chosen token (for migrating sessions from another
    /// server). The original let anyone do this; here the route exists only
    /// when an admin credential is configured, and the caller must present it.
    async fn stored_token(&self) -> Response {
        if !self.admin {
            return err(
                StatusCode::FORBIDDEN,
                "/stored_token needs the admin credential (Authorization: Bearer <credential>)",
            );
        }
        let user = match self.params.get("user").filter(|u| !u.is_empty()) {
            Some(u) => u,
            None => return err(StatusCode::BAD_REQUEST, "missing user"),
        };
        if let Err(e) = check_name("user", user) {
            return err(StatusCode::BAD_REQUEST, &e.to_string());
        }
        let Some(token) = self.params.get("token").filter(|t| !t.is_empty()) else {
            return err(StatusCode::BAD_REQUEST, "missing token");
        };
        if !is_acceptable_stored_token(token) {
            return err(
                StatusCode::BAD_REQUEST,
                "token must be 32 to 128 characters of A-Z, a-z, 0-9, '-' or '_'",
            );
        }
        let identity = Identity::new(user, "stored");
        let client = self.client.map(|c| c.ip());
        match login::issue(
            self.app,
            self.realm,
            identity,
            client,
            Token::from_client(token),
        )
        .await
        {
            Ok((token, record)) => ok(format!(
                "{}\n{}",
                token.expose(),
                record.identity.sks_record_text()
            )),
            Err(e) => login_error(e),
        }
    }

    async fn get_key(&self) -> Response {
        let record = match self.current().await {
            Ok(v) => v,
            Err(r) => return r,
        };
        match self
            .app
            .store
            .get_key(&record.identity.sks_record_text())
            .await
        {
            Ok(Some(key)) => ok(key),
            Ok(None) => ok_empty_chunked(),
            Err(e) => store_unavailable("get_key", e),
        }
    }

    async fn gen_key(&self) -> Response {
        let record = match self.current().await {
            Ok(v) => v,
            Err(r) => return r,
        };
        let key = random_hex(64);
        match self
            .app
            .store
            .put_key(&record.identity.sks_record_text(), &key)
            .await
        {
            Ok(()) => ok(key),
            Err(e) => store_unavailable("put_key", e),
        }
    }

    fn group(&self) -> Result<&str, Response> {
        let Some(group) = self.params.get("group") else {
            return Err(bare(StatusCode::FORBIDDEN, "missing group"));
        };
        check_name("group", group).map_err(|e| err(StatusCode::BAD_REQUEST, &e.to_string()))?;
        Ok(group)
    }

    async fn create_group(&self) -> Response {
        let (group, record) = match (self.group(), self.current().await) {
            (Ok(g), Ok(c)) => (g, c),
            (Err(r), _) | (_, Err(r)) => return r,
        };
        let key = random_hex(20);
        match self
            .app
            .store
            .create_group(group, self.realm, &record.identity.user, &key)
            .await
        {
            Ok(true) => ok("OK\n"),
            Ok(false) => text(StatusCode::FORBIDDEN, "ERROR: group exists"),
            Err(e) => store_unavailable("create_group", e),
        }
    }

    async fn mod_group(&self) -> Response {
        let (group, record) = match (self.group(), self.current().await) {
            (Ok(g), Ok(c)) => (g, c),
            (Err(r), _) | (_, Err(r)) => return r,
        };
        let caller = record.identity.user.as_str();
        let names = |param: &str| -> Vec<String> {
            self.params
                .get(param)
                .map(|v| {
                    v.split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut changes = Vec::new();
        for user in names("add_members") {
            changes.push(GroupChange {
                user,
                role: Some(GroupRole::Member),
            });
        }
        for user in names("add_admins") {
            changes.push(GroupChange {
                user,
                role: Some(GroupRole::Admin),
            });
        }
        let mut self_removal = false;
        for user in names("remove") {
            if user == caller {
                self_removal = true;
            } else {
                changes.push(GroupChange { user, role: None });
            }
        }
        for c in &changes {
            if let Err(e) = check_name("user", &c.user) {
                return err(StatusCode::BAD_REQUEST, &e.to_string());
            }
        }
        match self
            .app
            .store
            .update_group(group, self.realm, caller, &changes)
            .await
        {
            Ok(true) if self_removal => ok("WARN: self-removal ignored\n"),
            Ok(true) => ok("OK\n"),
            Ok(false) => bare(StatusCode::FORBIDDEN, "caller is not an admin of the group"),
            Err(e) => store_unavailable("update_group", e),
        }
    }

    async fn group_hash(&self) -> Response {
        let (group, record) = match (self.group(), self.current().await) {
            (Ok(g), Ok(c)) => (g, c),
            (Err(r), _) | (_, Err(r)) => return r,
        };
        let store = &self.app.store;
        let role = match store
            .group_role(group, self.realm, &record.identity.user)
            .await
        {
            Ok(r) => r,
            Err(e) => return store_unavailable("group_role", e),
        };
        if role.is_none() {
            return bare(StatusCode::FORBIDDEN, "caller is not a member of the group");
        }
        let key = match store.group_key(group).await {
            Ok(Some(k)) => k,
            Ok(None) => return bare(StatusCode::FORBIDDEN, "no such group"),
            Err(e) => return store_unavailable("group_key", e),
        };
        let mut h = Sha256::new();
        h.update(self.params.get("salt").unwrap_or("").as_bytes());
        h.update(b"\n");
        h.update(key.as_bytes());
        ok(format!("{}\n", hex::encode(h.finalize())))
    }
}

/// Stored tokens are bearer secrets too: refuse short or odd ones (such as
/// the original's `revoked` sentinel) rather than mint guessable sessions.
fn is_acceptable_stored_token(token: &str) -> bool {
    (32..=128).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
