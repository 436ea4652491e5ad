//! The pages people read — login, "not allowed", "my sessions" — in one
//! layout (`assets/page.html`), and the JS helper, compiled in: no external
//! assets, so the pages work offline, under a strict CSP, and without
//! JavaScript.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

const LAYOUT: &str = include_str!("../../../assets/page.html");
const LOGIN_HTML: &str = include_str!("../../../assets/login.html");

/// A page in the shared layout: `main` is trusted markup (escape what goes
/// into it); `wide` for tables.
pub fn html(status: StatusCode, title: &str, main: &str, wide: bool) -> Response {
    let html = LAYOUT
        .replace("{{title}}", &escape(title))
        .replace("{{class}}", if wide { r#" class="wide""# } else { "" })
        .replace("{{main}}", main);
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

/// The 403 page of forward auth: who is signed in, that this page is not
/// theirs, and a way to switch accounts (log out, then log in again).
pub fn not_allowed_page(user: Option<&str>) -> Response {
    let main = match user {
        Some(user) => format!(
            r#"  <h1>Not allowed</h1>
  <p class="who">You are signed in as <strong>{user}</strong>.</p>
  <p>This account may not open this page. If you have another account that may, sign out and sign in with it; otherwise ask the page's owner for access.</p>
  <form method="post" action="/session/logout"><button type="submit">Sign out</button></form>
  <p class="note"><a href="/session/sessions">Your sessions</a></p>"#,
            user = escape(user)
        ),
        None => r#"  <h1>Not allowed</h1>
  <p>This page is closed.</p>"#
            .to_owned(),
    };
    html(StatusCode::FORBIDDEN, "Not allowed", &main, false)
}
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
    let main = LOGIN_HTML
        .replace("{{error}}", &error)
        .replace("{{remember}}", remember)
        .replace("{{next}}", &escape(next.unwrap_or("/")));
    html(status, "Log in", &main, false)
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
