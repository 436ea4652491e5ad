//! The one error model of every HTTP surface. A handler that fails returns an
//! [`Error`]; [`Error::row`] is the single table from each failure to its
//! status, machine code, message and extra headers; three small renderers
//! turn a row into an answer — JSON (`/v1`, admin, credentials, tickets, and
//! the browser routes for scripts), SessionKeyServer's text
//! ([`TextError`]), and the browser's page ([`Error::page`]).
//!
//! Why one table: the surfaces used to map failures on their own, and the
//! copies drifted (an unknown module was 403, 400 or 401 depending on the
//! door; `Retry-After` was missing on one). Why renderers do no logging:
//! every error response carries its [`Error`] (as [`Failed`]) and
//! `middleware::pipeline` logs and counts it once, whatever the surface.
//!
//! The text protocol keeps its wire answers: the original answered a failed
//! login, a missing or stale token and the group refusals with a bare 403,
//! and clients key on that. The table's `text` column says so per failure.

use crate::login::LoginError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use sessiond_auth::Refusal;
use sessiond_core::ticket::TicketError;
use sessiond_store::StoreError;
use std::borrow::Cow;
use std::sync::Arc;

/// The challenge sent on 401 answers where Negotiate is accepted.
pub const CHALLENGE: HeaderValue = HeaderValue::from_static("Negotiate");

/// The machine code of a failed request, on every surface, so a script or
/// an operator can tell failures apart without reading the body. (FreeIPA's
/// UI keyed its login-and-retry on such a header; sessiond.js keys on
/// `login-required`.)
pub const REASON_HEADER: &str = "x-sessiond-reason";

/// Every way a request can fail, on any surface.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A parameter or body field is missing or invalid: 400 `invalid_request`.
    #[error("{0}")]
    BadRequest(String),
    /// The body is not in the media type the endpoint reads: 415.
    #[error("{0}")]
    UnsupportedMediaType(&'static str),
    /// The body could not be read whole (over the limit, or cut off): 413.
    #[error("request body too large or incomplete")]
    BodyTooLarge,
    /// Session data over the limit (`api_v1::MAX_DATA_BYTES`): 413.
    #[error("session data would be {size} bytes; the limit is {limit}")]
    DataTooLarge { size: usize, limit: usize },
    /// Under `/v1/`, a path no route has: 404 `not_found`.
    #[error("no such API endpoint; see /v1/openapi.json")]
    NoSuchEndpoint,
    /// A routed path with a method it does not take: 405.
    #[error("this endpoint does not accept that method; see /v1/openapi.json")]
    MethodNotAllowed,
    /// A text-protocol path that does not exist (the original's `Unknown
    /// path` to a POST, an empty 404 to anything else).
    #[error("unknown path")]
    UnknownPath { post: bool },
    /// A password login did not produce an identity. (A store failure of
    /// a login becomes [`Error::Store`] in the conversion.)
    #[error(transparent)]
    Login(LoginError),
    /// Negotiate is possible here but the request brought no ticket: 401
    /// with `WWW-Authenticate: Negotiate`, so the client sends one.
    #[error("send user and password, or a Kerberos ticket (Authorization: Negotiate)")]
    NegotiateNeeded,
    /// A Negotiate exchange did not produce an identity.
    #[error(transparent)]
    Negotiate(#[from] Negotiate),
    /// No session token where one is needed: 401 `missing_token`.
    #[error("send the session token as Authorization: Bearer <token>")]
    MissingToken,
    /// The token names no current session (unknown, expired, revoked or
    /// superseded): 401 `invalid_token`.
    #[error("the token is unknown, expired, revoked or superseded")]
    NotCurrent,
    /// Revoking a token that names no session: 404 `invalid_token`.
    #[error("no such session in this realm (already revoked or expired?)")]
    UnknownToken,
    /// A browser request without a live session: 401 `login-required`,
    /// what sessiond.js answers by logging in and retrying.
    #[error("{}", if *ended { "the session has ended: log in again" } else { "no session: log in" })]
    LoginRequired { ended: bool },
    /// A caller's own credential (admin, credential reader) is missing
    /// (401 `missing_credential`) or not one configured (403 `forbidden`).
    #[error("{}", credential_message(*who, *presented))]
    Credential { who: Caller, presented: bool },
    /// A resource that exists only when configured, and is not: 404, as if
    /// it did not exist. The text names the setting that enables it.
    #[error("no such resource ({0})")]
    NotConfigured(&'static str),
    /// No session with that id for that user: 404 `no_such_session`.
    #[error("this user has no such session in this realm")]
    NoSuchSession,
    /// A ticket route for a realm without `[realms.X.ticket]`: 404.
    #[error("realm {0:?} has no [realms.{0}.ticket] configuration")]
    NotATicketRealm(String),
    /// The session keeps no Kerberos credentials: 404 `no_credentials`.
    #[error("this session holds no credentials (the client did not delegate)")]
    NoCredentials,
    /// A back end asked for a ticket to a service not in the realm's
    /// `[realms.X.delegation] targets` (or the realm delegates to none):
    /// 403 `target_not_allowed`, before any KDC request.
    #[error("{0}")]
    TargetNotAllowed(String),
    /// The KDC refused a delegated ticket (the user unknown to it, or
    /// sessiond not allowed to delegate to that target): 403
    /// `delegation_refused`.
    #[error("{0}")]
    DelegationRefused(String),
    /// The KDC could not be asked for a delegated ticket: 503
    /// `kerberos_unavailable`.
    #[error("{0}")]
    KerberosUnavailable(String),
    /// The session's credentials were sealed under a key no longer
    /// configured: 410 `credentials_unreadable`.
    #[error(
        "the session's credentials cannot be opened (sealed under a key no longer configured)"
    )]
    CredentialsUnreadable,
    /// A compare-and-set of session data lost: 409 `version_conflict`.
    #[error("{0}")]
    VersionConflict(String),
    /// A browser POST from another site (CSRF check): 403 `csrf`.
    #[error("{0}")]
    CrossSite(&'static str),
    /// An identity no HTTP header can carry: 403, never a 200 without it
    /// (an application behind the proxy could then trust a client's header).
    #[error("the identity cannot be passed on in a header")]
    UnheaderableIdentity,
    /// Forward auth: an access rule keeps this request out — a session
    /// whose identity the rule does not admit, or a `deny` rule: 403
    /// `not_allowed`, never 401 (a browser would be sent to log in again,
    /// and back, forever).
    #[error("{}", not_allowed_message(user.as_deref()))]
    NotAllowed {
        /// Who is signed in (none: a `deny` rule refused before any check).
        user: Option<String>,
        /// The deciding rule's label, for logs.
        rule: String,
        /// Why the identity was refused, for logs and `check-access`.
        why: String,
    },
    /// SessionKeyServer's group refusals.
    #[error(transparent)]
    Group(#[from] GroupRefusal),
    /// No ticket can be signed for this user (a name the format cannot hold).
    #[error("no ticket can be issued for this user: {0}")]
    Ticket(#[from] TicketError),
    /// The store has no such ability (memcached cannot enumerate): 501.
    #[error("{0}")]
    NotSupported(String),
    /// The session store cannot answer: 503 `store_unavailable`, never a
    /// YES and never a NO that would log a user out.
    #[error("session store unavailable; try again")]
    Store {
        /// The store operation, for `sessiond_store_errors_total{op}`.
        op: &'static str,
        source: StoreError,
    },
}

/// Why a Negotiate (SPNEGO) exchange gave no identity.
#[derive(Debug, thiserror::Error)]
pub enum Negotiate {
    /// Not built with Kerberos, or `kerberos.negotiate` is off for the realm.
    #[error("Negotiate logins are not enabled here (kerberos.negotiate)")]
    NotEnabled,
    /// Malformed, foreign, replayed or expired token (the reason is logged,
    /// never sent): 401 with the challenge.
    #[error("the Kerberos token was not accepted")]
    Refused(String),
    /// The exchange needs another leg: 401 with this `WWW-Authenticate`.
    #[error("the Negotiate exchange continues: send the next token on this connection")]
    Continue(HeaderValue),
    /// GSSAPI cannot answer (the reason is logged): 503.
    #[error("Kerberos is unavailable right now; try again")]
    Unavailable(String),
}

/// SessionKeyServer's refusals of group requests: the original's bare 403s.
#[derive(Debug, thiserror::Error)]
pub enum GroupRefusal {
    #[error("missing group")]
    Missing,
    #[error("group exists")]
    Exists,
    #[error("caller is not an admin of the group")]
    NotAdmin,
    #[error("caller is not a member of the group")]
    NotMember,
    #[error("no such group")]
    NoSuch,
}

/// Whose credential a [`Error::Credential`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// The administrator (`server.admin_token_file`).
    Admin,
    /// A back end fetching credentials (`kerberos.credential_readers_file`).
    Reader,
}

fn credential_message(who: Caller, presented: bool) -> &'static str {
    match (who, presented) {
        (Caller::Admin, false) => "send the admin credential as Authorization: Bearer <credential>",
        (Caller::Admin, true) => "the admin credential is wrong",
        (Caller::Reader, false) => {
            "send the back end's credential as Authorization: Bearer <credential>"
        }
        (Caller::Reader, true) => "this back end's credential is not allowed to fetch credentials",
    }
}

/// How the text protocol answers a failure.
#[derive(Debug, Clone, Copy)]
pub enum Text {
    /// `ERR: <message>` with the row's status.
    Line,
    /// `ERR: <this message>` with this status (the protocol's own words).
    LineAs(StatusCode, &'static str),
    /// A status with an empty body and no content type, as the original sent.
    Bare(StatusCode),
    /// A fixed body, as the original sent it.
    Raw(StatusCode, &'static str),
}

/// The browser's own pages for some failures (the login form again after
/// a failed login, the "not allowed" page): given the failure, its status
/// and message, a page — or `None` for the plain text page. The pages live
/// with the browser routes; this module imports no surface.
pub type PageFor<'a> = &'a dyn Fn(&Error, StatusCode, &str) -> Option<Response>;

/// One row of the table: everything an answer to a failure carries.
pub struct Row {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: Cow<'static, str>,
    pub text: Text,
    pub retry_after: Option<u64>,
    /// `WWW-Authenticate` to send (a Negotiate challenge or next leg).
    pub challenge: Option<HeaderValue>,
}

impl Error {
    /// A store failure in operation `op`, for `map_err`.
    pub fn store(op: &'static str) -> impl FnOnce(StoreError) -> Error {
        move |source| Error::Store { op, source }
    }

    /// The table: every failure's status, code, message and headers.
    pub fn row(&self) -> Row {
        use StatusCode as S;
        let row = |status, code, text| Row {
            status,
            code,
            message: Cow::Owned(self.to_string()),
            text,
            retry_after: None,
            challenge: None,
        };
        match self {
            Error::BadRequest(_) => row(S::BAD_REQUEST, "invalid_request", Text::Line),
            Error::UnsupportedMediaType(_) => row(
                S::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                Text::Line,
            ),
            Error::BodyTooLarge => row(S::PAYLOAD_TOO_LARGE, "body_too_large", Text::Line),
            Error::DataTooLarge { .. } => row(S::PAYLOAD_TOO_LARGE, "data_too_large", Text::Line),
            Error::NoSuchEndpoint => row(S::NOT_FOUND, "not_found", Text::Line),
            Error::MethodNotAllowed => row(S::METHOD_NOT_ALLOWED, "method_not_allowed", Text::Line),
            Error::UnknownPath { post: true } => row(
                S::NOT_FOUND,
                "not_found",
                Text::Raw(S::NOT_FOUND, "Unknown path"),
            ),
            Error::UnknownPath { post: false } => {
                row(S::NOT_FOUND, "not_found", Text::Bare(S::NOT_FOUND))
            }
            Error::Login(e) => login_row(e, row),
            // The text protocol's own words for Negotiate (`/auth_token`).
            Error::NegotiateNeeded => Row {
                challenge: Some(CHALLENGE),
                ..row(
                    S::UNAUTHORIZED,
                    "negotiate",
                    Text::LineAs(
                        S::UNAUTHORIZED,
                        "send pwd, or a Kerberos ticket (Negotiate)",
                    ),
                )
            },
            Error::Negotiate(n) => match n {
                Negotiate::NotEnabled => row(
                    S::BAD_REQUEST,
                    "negotiate_not_enabled",
                    Text::LineAs(S::BAD_REQUEST, "missing pwd"),
                ),
                // The text protocol answers every failed login with a bare 403.
                Negotiate::Refused(_) => Row {
                    challenge: Some(CHALLENGE),
                    ..row(
                        S::UNAUTHORIZED,
                        "negotiate_refused",
                        Text::Bare(S::FORBIDDEN),
                    )
                },
                Negotiate::Continue(next) => Row {
                    challenge: Some(next.clone()),
                    ..row(
                        S::UNAUTHORIZED,
                        "negotiate_continue",
                        Text::LineAs(S::UNAUTHORIZED, "Negotiate continues"),
                    )
                },
                Negotiate::Unavailable(_) => row(
                    S::SERVICE_UNAVAILABLE,
                    "auth_unavailable",
                    Text::LineAs(
                        S::SERVICE_UNAVAILABLE,
                        "authentication back end unavailable; try again",
                    ),
                ),
            },
            Error::MissingToken => row(S::UNAUTHORIZED, "missing_token", Text::Bare(S::FORBIDDEN)),
            Error::NotCurrent => row(S::UNAUTHORIZED, "invalid_token", Text::Bare(S::FORBIDDEN)),
            Error::UnknownToken => row(S::NOT_FOUND, "invalid_token", Text::Line),
            Error::LoginRequired { .. } => row(S::UNAUTHORIZED, "login-required", Text::Line),
            Error::Credential { who, presented } => {
                let (status, code) = if *presented {
                    (S::FORBIDDEN, "forbidden")
                } else {
                    (S::UNAUTHORIZED, "missing_credential")
                };
                match who {
                    // The only admin route of the text protocol is /stored_token.
                    Caller::Admin => row(
                        status,
                        code,
                        Text::LineAs(
                            S::FORBIDDEN,
                            "/stored_token needs the admin credential (Authorization: Bearer <credential>)",
                        ),
                    ),
                    Caller::Reader => row(status, code, Text::Line),
                }
            }
            Error::NotConfigured(_) => row(S::NOT_FOUND, "not_found", Text::Line),
            Error::NoSuchSession => row(S::NOT_FOUND, "no_such_session", Text::Line),
            Error::NotATicketRealm(_) => row(S::NOT_FOUND, "not_a_ticket_realm", Text::Line),
            Error::NoCredentials => row(S::NOT_FOUND, "no_credentials", Text::Line),
            Error::CredentialsUnreadable => row(S::GONE, "credentials_unreadable", Text::Line),
            Error::TargetNotAllowed(_) => row(S::FORBIDDEN, "target_not_allowed", Text::Line),
            Error::DelegationRefused(_) => row(S::FORBIDDEN, "delegation_refused", Text::Line),
            Error::KerberosUnavailable(_) => row(
                S::SERVICE_UNAVAILABLE,
                "kerberos_unavailable",
                Text::LineAs(
                    S::SERVICE_UNAVAILABLE,
                    "authentication back end unavailable; try again",
                ),
            ),
            Error::VersionConflict(_) => row(S::CONFLICT, "version_conflict", Text::Line),
            Error::CrossSite(_) => row(S::FORBIDDEN, "csrf", Text::Line),
            Error::NotAllowed { .. } => row(S::FORBIDDEN, "not_allowed", Text::Line),
            Error::UnheaderableIdentity => {
                row(S::FORBIDDEN, "identity_unrepresentable", Text::Line)
            }
            Error::Group(g) => {
                let text = match g {
                    GroupRefusal::Exists => Text::Raw(S::FORBIDDEN, "ERROR: group exists"),
                    _ => Text::Bare(S::FORBIDDEN),
                };
                row(S::FORBIDDEN, "group_refused", text)
            }
            Error::Ticket(_) => row(S::BAD_REQUEST, "invalid_request", Text::Line),
            Error::NotSupported(_) => row(S::NOT_IMPLEMENTED, "not_supported", Text::Line),
            Error::Store { .. } => row(S::SERVICE_UNAVAILABLE, "store_unavailable", Text::Line),
        }
    }

    /// The answer for a JSON client: `{"error": code, "message": text}`.
    pub fn json(self) -> Response {
        let row = self.row();
        let body = Json(json!({"error": row.code, "message": row.message}));
        finish(Arc::new(self), &row, (row.status, body).into_response())
    }

    /// The answer for SessionKeyServer's text protocol.
    pub fn text(self) -> Response {
        let row = self.row();
        let r = match row.text {
            Text::Line => plain(TEXT, row.status, format!("ERR: {}\n", row.message)),
            Text::LineAs(status, message) => plain(TEXT, status, format!("ERR: {message}\n")),
            Text::Raw(status, body) => plain(TEXT, status, body.to_owned()),
            Text::Bare(status) => status.into_response(),
        };
        finish(Arc::new(self), &row, r)
    }

    /// The answer for a browser that wants a page: the page `custom` has
    /// for this failure (the login form again, "not allowed"), else a
    /// short plain-text page.
    pub fn page(self: Arc<Self>, custom: PageFor<'_>) -> Response {
        let row = self.row();
        let r = match custom(&self, row.status, &row.message) {
            Some(page) => page,
            None => plain(
                PAGE,
                row.status,
                format!(
                    "{} {}: {}\n",
                    row.status.as_u16(),
                    row.status.canonical_reason().unwrap_or(""),
                    row.message
                ),
            ),
        };
        finish(self, &row, r)
    }

    /// Logs and counts this failure; called once per failed request, by
    /// `middleware::pipeline`, whatever the surface that answered.
    pub fn report(&self, endpoint: &str) {
        match self {
            Error::Store { op, source } => {
                metrics::counter!("sessiond_store_errors_total", "op" => *op).increment(1);
                tracing::error!(endpoint, op, error = %source, "session store error");
            }
            Error::Negotiate(Negotiate::Refused(reason)) => {
                tracing::info!(endpoint, %reason, "Negotiate refused");
            }
            Error::Negotiate(Negotiate::Unavailable(reason)) => {
                tracing::error!(endpoint, %reason, "Negotiate unavailable");
            }
            Error::NotAllowed { user, rule, why } => {
                tracing::info!(
                    endpoint,
                    user = user.as_deref().unwrap_or("-"),
                    rule,
                    why,
                    "access rule refused the request"
                );
            }
            Error::DelegationRefused(reason) => {
                tracing::warn!(endpoint, %reason, "the KDC refused a delegated ticket");
            }
            Error::KerberosUnavailable(reason) => {
                tracing::error!(endpoint, %reason, "no delegated ticket: Kerberos unavailable");
            }
            e => tracing::debug!(endpoint, code = e.row().code, "request refused"),
        }
    }
}

fn not_allowed_message(user: Option<&str>) -> String {
    match user {
        Some(u) => format!("{u} may not open this page"),
        None => "this page is closed".into(),
    }
}

/// The table's rows for login failures.
fn login_row(e: &LoginError, row: impl Fn(StatusCode, &'static str, Text) -> Row) -> Row {
    use StatusCode as S;
    // The text protocol has one answer for every refusal, as the original.
    let refused = Text::Bare(S::FORBIDDEN);
    match e {
        LoginError::BadRequest(_) => row(S::BAD_REQUEST, "invalid_request", Text::Line),
        LoginError::UnknownModule(_) => row(S::BAD_REQUEST, "unknown_module", refused),
        LoginError::Rejected => Row {
            message: Cow::Borrowed("wrong user name or password"),
            ..row(S::UNAUTHORIZED, "authentication_failed", refused)
        },
        LoginError::Refused(reason) => Row {
            message: Cow::Borrowed(match reason {
                Refusal::PasswordExpired => "your password has expired: change it, then log in",
                Refusal::AccountDisabled => "this account is disabled",
                Refusal::WrongPassword | Refusal::UnknownUser => "wrong user name or password",
            }),
            ..row(
                if *reason == Refusal::PasswordExpired {
                    S::FORBIDDEN
                } else {
                    S::UNAUTHORIZED
                },
                reason.code(),
                refused,
            )
        },
        LoginError::RateLimited { retry_after, .. } => Row {
            retry_after: Some(*retry_after),
            ..row(S::TOO_MANY_REQUESTS, "rate_limited", Text::Line)
        },
        LoginError::AuthUnavailable => Row {
            message: Cow::Borrowed("authentication back end unavailable; try again"),
            ..row(S::SERVICE_UNAVAILABLE, "auth_unavailable", Text::Line)
        },
        LoginError::Store(_) => Row {
            message: Cow::Borrowed("session store unavailable; try again"),
            ..row(S::SERVICE_UNAVAILABLE, "store_unavailable", Text::Line)
        },
    }
}

/// The text protocol's `text/plain` (no charset: the original's header,
/// which clients compare).
const TEXT: &str = "text/plain";
/// A page's plain text.
const PAGE: &str = "text/plain; charset=utf-8";

fn plain(content_type: &'static str, status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// A text-protocol answer: `text/plain`, as the original sent it.
pub fn text_plain(status: StatusCode, body: String) -> Response {
    plain(TEXT, status, body)
}

/// The headers every failure answer carries, and the error itself for the
/// middleware that logs it.
fn finish(e: Arc<Error>, row: &Row, mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(REASON_HEADER, HeaderValue::from_static(row.code));
    if let Some(s) = row.retry_after {
        h.insert(header::RETRY_AFTER, HeaderValue::from(s));
    }
    if let Some(c) = &row.challenge {
        h.insert(header::WWW_AUTHENTICATE, c.clone());
    }
    r.extensions_mut().insert(Failed(e));
    r
}

/// The failure an answer was made from, for the logging middleware and the
/// browser's page renderer.
#[derive(Clone)]
pub struct Failed(pub Arc<Error>);

impl From<LoginError> for Error {
    fn from(e: LoginError) -> Error {
        match e {
            // One row and one log line for every store failure.
            LoginError::Store(source) => Error::Store {
                op: "create",
                source,
            },
            e => Error::Login(e),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        self.json()
    }
}

/// An [`Error`] answered in SessionKeyServer's text protocol.
pub struct TextError(pub Error);

impl<E: Into<Error>> From<E> for TextError {
    fn from(e: E) -> TextError {
        TextError(e.into())
    }
}

impl IntoResponse for TextError {
    fn into_response(self) -> Response {
        self.0.text()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The inconsistencies the one table removed: the same failure has the
    /// same status and code on JSON and page surfaces, and the text
    /// protocol keeps its bare 403.
    #[test]
    fn one_row_per_failure() {
        let unknown = Error::Login(LoginError::UnknownModule("nope".into()));
        let row = unknown.row();
        assert_eq!((row.status.as_u16(), row.code), (400, "unknown_module"));
        assert!(matches!(row.text, Text::Bare(StatusCode::FORBIDDEN)));
        let limited = Error::Login(LoginError::RateLimited {
            scope: "for this user",
            retry_after: 7,
        });
        for r in [
            limited.row().retry_after,
            Error::Login(LoginError::RateLimited {
                scope: "for this user",
                retry_after: 7,
            })
            .text()
            .headers()
            .get(header::RETRY_AFTER)
            .map(|v| v.to_str().unwrap().parse().unwrap()),
        ] {
            assert_eq!(r, Some(7));
        }
        let text = Error::Credential {
            who: Caller::Admin,
            presented: false,
        }
        .text();
        assert_eq!(text.status(), StatusCode::FORBIDDEN);
        let json = Error::Credential {
            who: Caller::Admin,
            presented: false,
        }
        .json();
        assert_eq!(json.status(), StatusCode::UNAUTHORIZED);
    }
}
