//! The login page and the JS helper, compiled in: no external assets, so
//! the page works offline, under a strict CSP, and without JavaScript.

use crate::app::App;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::sync::Arc;

const LOGIN_HTML: &str = include_str!("../../../assets/login.html");
const SCRIPT: &str = include_str!("../../../assets/sessiond.js");

/// Escapes text for an HTML attribute or element.
pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

/// `GET /login`
pub async fn login_page(State(app): State<Arc<App>>, Query(q): Query<LoginQuery>) -> Response {
    let remember = app.config.browser.remember_me.is_some();
    login_page_with(remember, StatusCode::OK, q.next.as_deref(), None)
}

/// The login page with `next` kept and, after a failed attempt, the reason.
pub fn login_page_with(
    remember: bool,
    status: StatusCode,
    next: Option<&str>,
    error: Option<&str>,
) -> Response {
    let error = error
        .map(|e| format!(r#"<p class="error" role="alert">{}</p>"#, escape(e)))
        .unwrap_or_default();
    let remember = if remember {
        r#"<label class="remember"><input type="checkbox" name="remember" value="1"> Keep me logged in on this device</label>"#
    } else {
        ""
    };
    let html = LOGIN_HTML
        .replace("{{error}}", &error)
        .replace("{{remember}}", remember)
        .replace("{{next}}", &escape(next.unwrap_or("/")));
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
            ),
            (header::X_FRAME_OPTIONS, "DENY"),
        ],
        html,
    )
        .into_response()
}

/// `GET /static/sessiond.js`
pub async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        SCRIPT,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape(r#""><script>alert('x')</script>"#),
            "&quot;&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"
        );
    }
}
