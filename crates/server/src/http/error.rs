//! The JSON error of the `/v1` API and the admin endpoints:
//! `{"error": code, "message": text}` with the right status, and the one
//! mapping from a login failure to it. Kept out of any one surface's file so
//! every JSON surface (`api_v1`, `admin`, `credentials`, `tickets`) uses it
//! without importing another surface.

use crate::login::LoginError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use sessiond_store::StoreError;

/// A typed API error.
#[derive(Debug)]
pub struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) message: String,
    pub(crate) retry_after: Option<u64>,
    /// Ask for Kerberos: `WWW-Authenticate: Negotiate`.
    pub(crate) negotiate: bool,
}

impl ApiError {
    pub(crate) fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
            negotiate: false,
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    pub(crate) fn store(op: &'static str, e: StoreError) -> ApiError {
        metrics::counter!("sessiond_store_errors_total", "op" => op).increment(1);
        if let StoreError::Unsupported { .. } = e {
            return ApiError::new(StatusCode::NOT_IMPLEMENTED, "not_supported", e.to_string());
        }
        tracing::error!(op, error = %e, "session store error");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            "the session store is unavailable; try again",
        )
    }

    pub(crate) fn not_current() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "the token is unknown, expired, revoked or superseded",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (
            self.status,
            Json(json!({"error": self.code, "message": self.message})),
        )
            .into_response();
        if let Some(s) = self.retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        if self.negotiate {
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, super::negotiate::CHALLENGE);
        }
        r
    }
}

impl From<LoginError> for ApiError {
    fn from(e: LoginError) -> ApiError {
        match e {
            LoginError::BadRequest(m) => ApiError::bad_request(m),
            e @ LoginError::UnknownModule(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "unknown_module", e.to_string())
            }
            LoginError::Rejected => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "authentication_failed",
                "wrong user name or password",
            ),
            LoginError::Refused(reason) => ApiError::new(
                if reason == sessiond_auth::Refusal::PasswordExpired {
                    StatusCode::FORBIDDEN
                } else {
                    StatusCode::UNAUTHORIZED
                },
                reason.code(),
                format!("authentication refused: {reason}"),
            ),
            e @ LoginError::RateLimited { retry_after, .. } => ApiError {
                retry_after: Some(retry_after),
                ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", e.to_string())
            },
            LoginError::AuthUnavailable => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "auth_unavailable",
                "the authentication back end is unavailable; try again",
            ),
            LoginError::Store(e) => ApiError::store("create", e),
        }
    }
}
