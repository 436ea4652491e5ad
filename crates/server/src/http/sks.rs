//! SessionKeyServer 1.5's text protocol, byte for byte where the original
//! answered, and a one-line `ERR: …` with 400/403 where it hung, dropped the
//! connection or crashed. See docs/protocol.md for every case.

use crate::app::App;
use crate::audit;
use crate::clock::now;
use crate::http::check::{self, Access, Checked};
use crate::http::error::{Error, GroupRefusal, TextError};
use crate::http::extract::{Bearer, Client, NegotiateHeader, TextParams};
use crate::http::params::Params;
use crate::login::{self, PasswordLogin};
use axum::extract::State;
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use sessiond_auth::Password;
use sessiond_core::names::check_name;
use sessiond_core::session::SessionRecord;
use sessiond_core::token::random_hex;
use sessiond_core::{Identity, Token};
use sessiond_store::{GroupChange, GroupRole};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// The version the original reports; clients compare it.
const PROTOCOL_VERSION: &str = "1.5\n";

/// What a handler answers: the protocol's text, or a failure rendered as
/// the protocol's text by the one error model.
type Answer = Result<Response, Error>;

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    crate::http::error::text_plain(status, body.into())
}

fn ok(body: impl Into<String>) -> Answer {
    Ok(text(StatusCode::OK, body))
}

/// `200`, `text/plain` and an empty body of unannounced length, which hyper
/// sends chunked (`Transfer-Encoding: chunked`, then the last chunk): what the
/// original answered to `/get_key` when no key exists (reference §2.2).
fn ok_empty_chunked() -> Answer {
    let mut r = Response::new(axum::body::Body::new(UnannouncedEmpty));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    Ok(r)
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
pub async fn handle(
    State(app): State<Arc<App>>,
    method: Method,
    uri: Uri,
    client: Client,
    Bearer(admin_credential): Bearer,
    NegotiateHeader(negotiate): NegotiateHeader,
    params: Result<TextParams, Error>,
) -> Result<Response, TextError> {
    // The JSON API's namespace: never the text protocol's "missing realm".
    if uri.path().starts_with("/v1/") {
        return Ok(Error::NoSuchEndpoint.json());
    }
    let TextParams(params) = params?;
    let path = uri.path();
    if method == Method::GET && path == "/version" {
        return Ok(text(StatusCode::OK, PROTOCOL_VERSION));
    }
    let realm = params
        .get("realm")
        .ok_or_else(|| Error::BadRequest("missing realm".into()))?;
    login::check_realm(realm)?;
    if method != Method::GET && method != Method::POST {
        return Err(Error::UnknownPath { post: true }.into());
    }
    let req = SksRequest {
        app: &app,
        realm,
        params: &params,
        client,
        admin: admin_credential.as_deref().map(|c| app.is_admin(c)),
        negotiate,
    };
    Ok(match path {
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
        _ => Err(Error::UnknownPath {
            post: method == Method::POST,
        }),
    }?)
}

struct SksRequest<'a> {
    app: &'a App,
    realm: &'a str,
    params: &'a Params,
    client: Client,
    /// Whether the caller presented a bearer credential, and whether it is
    /// the admin credential.
    admin: Option<bool>,
    /// `Authorization: Negotiate` instead of a password (`curl --negotiate`).
    negotiate: Option<Result<Vec<u8>, ()>>,
}

/// A login's answer: the token, then the identity record.
fn issued(token: &Token, record: &SessionRecord) -> Answer {
    ok(format!(
        "{}\n{}",
        token.expose(),
        record.identity.sks_record_text()
    ))
}

impl SksRequest<'_> {
    fn token(&self) -> Option<Token> {
        self.params.get("token").map(Token::from_client)
    }

    /// The current session of `token=`.
    async fn current(&self) -> Result<SessionRecord, Error> {
        let token = self.token().ok_or(Error::MissingToken)?;
        check::current(self.app, &token, self.realm, Access::Touch).await
    }

    /// `/valid`: YES, SUPERCEDED or NO; in a ticket realm a ticket (the
    /// cookie value) passed as the token answers YES with source `ticket`.
    async fn valid(&self) -> Answer {
        let Some(token) = self.token() else {
            return ok("NO\n");
        };
        match check::token_or_ticket(self.app, &token, self.realm, self.client.ip()).await? {
            Checked::Current(r) => ok(format!("YES\n{}\n", r.identity.sks_record_text())),
            Checked::Superseded(r) => ok(format!("SUPERCEDED\n{}\n", r.identity.sks_record_text())),
            Checked::Ticket(_, holder) => {
                ok(format!("YES\n{}\n", holder.identity().sks_record_text()))
            }
            Checked::Invalid => ok("NO\n"),
        }
    }

    async fn revoke(&self) -> Answer {
        let Some(token) = self.token() else {
            return ok("INVALID\n");
        };
        match self
            .app
            .store
            .revoke(token.hash(), self.realm, now())
            .await
            .map_err(Error::store("revoke"))?
        {
            Some(r) => {
                tracing::info!(realm = self.realm, user = %r.identity.user, session = %token.hash().short(), "session revoked");
                audit::revoked(&self.app.audit, self.realm, &r, &token.hash());
                ok("OK\n")
            }
            None => ok("INVALID\n"),
        }
    }

    async fn replace(&self) -> Answer {
        let token = self.token().ok_or(Error::MissingToken)?;
        let fresh = Token::generate();
        let r = self
            .app
            .store
            .replace(token.hash(), fresh.hash(), self.realm, now())
            .await
            .map_err(Error::store("replace"))?
            .ok_or(Error::NotCurrent)?;
        tracing::info!(realm = self.realm, user = %r.identity.user, old = %token.hash().short(), new = %fresh.hash().short(), "session replaced");
        audit::replaced(
            &self.app.audit,
            self.realm,
            &r,
            &token.hash(),
            &fresh.hash(),
        );
        ok(format!(
            "{}\n{}\n",
            fresh.expose(),
            r.identity.sks_record_text()
        ))
    }

    /// The password, refusing it in the URL when so configured.
    fn password(&self) -> Result<Password, Error> {
        let pwd = self
            .params
            .get("pwd")
            .ok_or_else(|| Error::BadRequest("missing pwd".into()))?;
        if self.app.config.server.refuse_query_credentials && self.params.in_query("pwd") {
            return Err(Error::BadRequest(
                "passwords are not accepted in the URL here; send pwd in a POST form body".into(),
            ));
        }
        Ok(Password::new(pwd))
    }

    fn user(&self) -> Result<&str, Error> {
        self.params
            .get("user")
            .ok_or_else(|| Error::BadRequest("missing user".into()))
    }

    async fn password_login(&self, module: Option<&str>, source: Option<&str>) -> Answer {
        let request = PasswordLogin {
            realm: self.realm,
            user: self.user()?,
            password: self.password()?,
            module,
            source,
            client: self.client.ip(),
            policy: None,
            device: None,
        };
        let (token, record) = login::password_login(self.app, request).await?;
        issued(&token, &record)
    }

    async fn auth_token(&self) -> Answer {
        if self.params.get("pwd").is_none() && self.app.config.negotiate_in(self.realm) {
            return self.negotiate_token().await;
        }
        self.password_login(self.params.get("module"), None).await
    }

    /// `/auth_token` with Kerberos: the first request (no header) gets 401
    /// `WWW-Authenticate: Negotiate`, the retry with a ticket gets a token.
    async fn negotiate_token(&self) -> Answer {
        let gss_token = self.negotiate.clone().ok_or(Error::NegotiateNeeded)?;
        let s = super::negotiate::login(self.app, self.realm, gss_token, self.client.0, None, true)
            .await?;
        let mut r = issued(s.token.as_ref().expect("a stored session"), &s.record)?;
        if let Some(reply) = s.reply {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, reply);
        }
        Ok(r)
    }

    /// Legacy PAM-only login, recorded with source `pam`.
    async fn pam_token(&self) -> Answer {
        if self.app.module("pam").is_none() {
            return Err(login::LoginError::UnknownModule("pam".into()).into());
        }
        self.password_login(Some("pam"), Some("pam")).await
    }

    /// Stores a caller-chosen token (for migrating sessions from another
    /// server). The original let anyone do this; here the route exists only
    /// when an admin credential is configured, and the caller must present it.
    async fn stored_token(&self) -> Answer {
        if self.admin != Some(true) {
            return Err(Error::Credential {
                who: crate::http::error::Caller::Admin,
                presented: self.admin.is_some(),
            });
        }
        let user = self
            .params
            .get("user")
            .filter(|u| !u.is_empty())
            .ok_or_else(|| Error::BadRequest("missing user".into()))?;
        check_name("user", user).map_err(|e| Error::BadRequest(e.to_string()))?;
        let token = self
            .params
            .get("token")
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::BadRequest("missing token".into()))?;
        if !is_acceptable_stored_token(token) {
            return Err(Error::BadRequest(
                "token must be 32 to 128 characters of A-Z, a-z, 0-9, '-' or '_'".into(),
            ));
        }
        let identity = Identity::new(user, "stored");
        let (token, record) = login::issue(
            self.app,
            self.realm,
            identity,
            self.client.ip(),
            Token::from_client(token),
        )
        .await?;
        issued(&token, &record)
    }

    async fn get_key(&self) -> Answer {
        let record = self.current().await?;
        match self
            .app
            .store
            .keys
            .get_key(&record.identity.sks_record_text())
            .await
            .map_err(Error::store("get_key"))?
        {
            Some(key) => ok(key),
            None => ok_empty_chunked(),
        }
    }

    async fn gen_key(&self) -> Answer {
        let record = self.current().await?;
        let key = random_hex(64);
        self.app
            .store
            .keys
            .put_key(&record.identity.sks_record_text(), &key)
            .await
            .map_err(Error::store("put_key"))?;
        ok(key)
    }

    /// The `group=` parameter and the caller's current session, both
    /// required (the group first, as the original checked).
    async fn group_and_caller(&self) -> Result<(&str, SessionRecord), Error> {
        let group = self.params.get("group").ok_or(GroupRefusal::Missing);
        let record = self.current().await;
        let group = group?;
        check_name("group", group).map_err(|e| Error::BadRequest(e.to_string()))?;
        Ok((group, record?))
    }

    async fn create_group(&self) -> Answer {
        let (group, record) = self.group_and_caller().await?;
        let key = random_hex(20);
        let created = self
            .app
            .store
            .groups
            .create_group(group, self.realm, &record.identity.user, &key)
            .await
            .map_err(Error::store("create_group"))?;
        if !created {
            return Err(GroupRefusal::Exists.into());
        }
        ok("OK\n")
    }

    async fn mod_group(&self) -> Answer {
        let (group, record) = self.group_and_caller().await?;
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
            check_name("user", &c.user).map_err(|e| Error::BadRequest(e.to_string()))?;
        }
        let applied = self
            .app
            .store
            .groups
            .update_group(group, self.realm, caller, &changes)
            .await
            .map_err(Error::store("update_group"))?;
        match (applied, self_removal) {
            (false, _) => Err(GroupRefusal::NotAdmin.into()),
            (true, true) => ok("WARN: self-removal ignored\n"),
            (true, false) => ok("OK\n"),
        }
    }

    async fn group_hash(&self) -> Answer {
        let (group, record) = self.group_and_caller().await?;
        let store = &self.app.store.groups;
        store
            .group_role(group, self.realm, &record.identity.user)
            .await
            .map_err(Error::store("group_role"))?
            .ok_or(GroupRefusal::NotMember)?;
        let key = store
            .group_key(group)
            .await
            .map_err(Error::store("group_key"))?
            .ok_or(GroupRefusal::NoSuch)?;
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
