//! Which sites may post to sessiond (CSRF) and where a login may send the
//! browser afterwards (no open redirect). Both use the same list: sessiond's
//! own origin, as the browser sees it, plus `browser.allowed_origins`.

use crate::app::App;
use axum::http::{header, HeaderMap};

/// The `host[:port]` the browser addressed (the proxy passes `Host` on).
fn own_authority(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::HOST)?.to_str().ok()
}

/// `scheme://authority` of a URL, lowercased; `None` if it is not absolute
/// http(s).
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    if authority.is_empty() || authority.contains('@') || authority.contains('\\') {
        return None;
    }
    Some(format!("{scheme}://{}", authority.to_ascii_lowercase()))
}

/// Whether `origin` (`scheme://host[:port]`) is sessiond's own or configured.
fn allowed(app: &App, headers: &HeaderMap, origin: &str) -> bool {
    let Some(origin) = origin_of(origin) else {
        return false;
    };
    let authority = origin.split_once("://").map(|(_, a)| a).unwrap_or("");
    own_authority(headers).is_some_and(|own| own.eq_ignore_ascii_case(authority))
        || app
            .config
            .browser
            .allowed_origins
            .iter()
            .any(|o| o.eq_ignore_ascii_case(&origin))
}

/// CSRF check for a state-changing POST. Browsers send `Origin` on every
/// POST (and `Referer` unless told not to): the origin must be sessiond's own
/// or a configured one. A request with neither, and no `Sec-Fetch-Site`, is
/// not from a browser (curl, a back end), so there is no ambient cookie to
/// abuse and it passes.
pub fn check_post(app: &App, headers: &HeaderMap) -> Result<(), &'static str> {
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(origin) = text(header::ORIGIN) {
        return if origin != "null" && allowed(app, headers, origin) {
            Ok(())
        } else {
            Err("cross-site request refused: the Origin header is not this site or an allowed origin")
        };
    }
    if let Some(referer) = text(header::REFERER) {
        return if allowed(app, headers, referer) {
            Ok(())
        } else {
            Err("cross-site request refused: the Referer is not this site or an allowed origin")
        };
    }
    match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        Some("same-origin") | Some("none") | None => Ok(()),
        Some(_) => Err("cross-site request refused: no Origin or Referer from another site"),
    }
}

/// Where to send the browser after a login: `next` if it is a path on this
/// site or a URL of an allowed origin, else `/`.
pub fn safe_next(app: &App, headers: &HeaderMap, next: Option<&str>) -> String {
    let Some(next) = next.filter(|n| !n.is_empty()) else {
        return "/".into();
    };
    if next.chars().any(|c| c.is_control() || c == '\\') {
        return "/".into();
    }
    if next.starts_with('/') && !next.starts_with("//") {
        return next.to_owned();
    }
    if allowed(app, headers, next) {
        return next.to_owned();
    }
    "/".into()
}

#[cfg(test)]
mod tests {
    use super::origin_of;

    #[test]
    fn origins() {
        assert_eq!(
            origin_of("https://App.example.com:8443/x?y#z").as_deref(),
            Some("https://app.example.com:8443")
        );
        assert_eq!(origin_of("javascript:alert(1)"), None);
        assert_eq!(origin_of("https://evil.com@good.com/"), None);
        assert_eq!(origin_of("//evil.com"), None);
    }
}
